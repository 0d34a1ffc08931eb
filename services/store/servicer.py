"""The StoreService gRPC handlers (the client API): delegation to the domain modules.

Requests arrive validated (:mod:`runtime.edge`); what the handlers raise becomes a status code there,
by the store's :data:`ERRORS` table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from storywire.v1 import store_pb2, store_pb2_grpc

from runtime.errors import ErrorMap, Mapped
from runtime.logging import get_logger
from services.store.database import TRANSIENT_ERRORS, DatabaseUnavailableError
from services.store.events import EventHub, watch
from services.store.jobs import Jobs
from services.store.jobupdate import NotFoundError, PreconditionError
from services.store.reads import Reads
from services.store.validation import parse_uuid

log = get_logger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]

#: the store's domain errors and their status codes (InvalidArgumentError is the runtime's own)
ERRORS = ErrorMap(
    [
        Mapped((NotFoundError,), grpc.StatusCode.NOT_FOUND),
        Mapped((PreconditionError,), grpc.StatusCode.FAILED_PRECONDITION),
        Mapped(
            (DatabaseUnavailableError, *TRANSIENT_ERRORS),
            grpc.StatusCode.UNAVAILABLE,
            "PostgreSQL is unavailable",
        ),
    ]
)


def seconds(duration: Duration, default: float) -> float:
    value = duration.ToTimedelta().total_seconds()
    return value if value > 0 else default


class StoreServicer(store_pb2_grpc.StoreServiceServicer):
    def __init__(self, jobs: Jobs, reads: Reads, hub: EventHub) -> None:
        self.jobs = jobs
        self.reads = reads
        self.hub = hub

    async def SubmitJob(
        self, request: store_pb2.SubmitJobRequest, context: Context
    ) -> store_pb2.SubmitJobResponse:
        job = await self.jobs.submit(request.spec, request.idempotency_key)
        log.info("job submitted", job_id=job.id, urls=len(job.spec.urls))
        return store_pb2.SubmitJobResponse(job=job)

    async def GetJob(self, request: store_pb2.GetJobRequest, context: Context) -> store_pb2.GetJobResponse:
        return store_pb2.GetJobResponse(job=await self.jobs.get(request.job_id))

    async def ListJobs(
        self, request: store_pb2.ListJobsRequest, context: Context
    ) -> store_pb2.ListJobsResponse:
        jobs, token = await self.jobs.list(request.page_size, request.page_token, request.states)
        return store_pb2.ListJobsResponse(jobs=jobs, next_page_token=token)

    async def CancelJob(
        self, request: store_pb2.CancelJobRequest, context: Context
    ) -> store_pb2.CancelJobResponse:
        job = await self.jobs.cancel(request.job_id, request.reason)
        log.info("job cancelled", job_id=job.id)
        return store_pb2.CancelJobResponse(job=job)

    async def WatchJob(
        self, request: store_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[store_pb2.WatchJobResponse]:
        job_id = parse_uuid(request.job_id, "job_id")
        heartbeat = seconds(request.heartbeat_interval, 5.0)
        async for event in watch(self.hub, self.jobs, job_id, heartbeat, request.after_seq):
            yield event

    async def GetStory(
        self, request: store_pb2.GetStoryRequest, context: Context
    ) -> store_pb2.GetStoryResponse:
        story, articles = await self.reads.get_story(request.story_id)
        return store_pb2.GetStoryResponse(story=story, articles=articles)

    async def ListStories(
        self, request: store_pb2.ListStoriesRequest, context: Context
    ) -> store_pb2.ListStoriesResponse:
        stories, token = await self.reads.list_stories(
            request.job_id,
            request.created_after,
            request.created_before,
            request.page_size,
            request.page_token,
        )
        return store_pb2.ListStoriesResponse(stories=stories, next_page_token=token)

    async def BatchGetArticles(
        self, request: store_pb2.BatchGetArticlesRequest, context: Context
    ) -> store_pb2.BatchGetArticlesResponse:
        found, missing = await self.reads.articles(list(request.article_ids))
        return store_pb2.BatchGetArticlesResponse(articles=found, missing_ids=missing)
