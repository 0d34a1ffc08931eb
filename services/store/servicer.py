"""The StoreService gRPC handlers: validation, status codes, and delegation to the domain modules."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from storywire.v1 import common_pb2, store_pb2, store_pb2_grpc

from runtime.batching import batches, pipelined
from runtime.logging import get_logger
from services.store.database import TRANSIENT_ERRORS, DatabaseUnavailableError
from services.store.events import EventHub, watch
from services.store.jobs import Jobs
from services.store.jobupdate import NotFoundError, PreconditionError
from services.store.reads import Reads
from services.store.settings import StoreSettings
from services.store.validation import InvalidArgumentError, parse_uuid
from services.store.writes import Counts, JobAttempt, Writer

log = get_logger(__name__)
MAX_WAIT_SECONDS = 60.0


T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]


class status_codes:  # used like a function: `async with status_codes(context):`
    """Map domain errors to precise gRPC status codes with clear messages (never swallows)."""

    def __init__(self, context: Context) -> None:
        self.context = context

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            return
        code: grpc.StatusCode | None = None
        if isinstance(exc, InvalidArgumentError):
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
        elif isinstance(exc, NotFoundError):
            code, message = grpc.StatusCode.NOT_FOUND, str(exc)
        elif isinstance(exc, PreconditionError):
            code, message = grpc.StatusCode.FAILED_PRECONDITION, str(exc)
        elif isinstance(exc, (DatabaseUnavailableError, *TRANSIENT_ERRORS)):
            log.warning("database unavailable", error=f"{type(exc).__name__}: {exc}")
            code, message = (
                grpc.StatusCode.UNAVAILABLE,
                f"PostgreSQL is unavailable: {type(exc).__name__}: {exc}",
            )
        if code is not None:
            await self.context.abort(code, message)


def _seconds(duration: Duration, default: float) -> float:
    value = duration.ToTimedelta().total_seconds()
    return value if value > 0 else default


class StoreServicer(store_pb2_grpc.StoreServiceServicer):
    def __init__(
        self, settings: StoreSettings, jobs: Jobs, writer: Writer, reads: Reads, hub: EventHub
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.writer = writer
        self.reads = reads
        self.hub = hub

    async def SubmitJob(
        self, request: store_pb2.SubmitJobRequest, context: Context
    ) -> store_pb2.SubmitJobResponse:
        async with status_codes(context):
            job = await self.jobs.submit(request.spec, request.idempotency_key)
            log.info("job submitted", job_id=job.id, urls=len(job.spec.urls))
            return store_pb2.SubmitJobResponse(job=job)

    async def GetJob(self, request: store_pb2.GetJobRequest, context: Context) -> store_pb2.GetJobResponse:
        async with status_codes(context):
            return store_pb2.GetJobResponse(job=await self.jobs.get(request.job_id))

    async def ListJobs(
        self, request: store_pb2.ListJobsRequest, context: Context
    ) -> store_pb2.ListJobsResponse:
        async with status_codes(context):
            jobs, token = await self.jobs.list(request.page_size, request.page_token, request.states)
            return store_pb2.ListJobsResponse(jobs=jobs, next_page_token=token)

    async def CancelJob(
        self, request: store_pb2.CancelJobRequest, context: Context
    ) -> store_pb2.CancelJobResponse:
        async with status_codes(context):
            job = await self.jobs.cancel(request.job_id, request.reason)
            log.info("job cancelled", job_id=job.id)
            return store_pb2.CancelJobResponse(job=job)

    async def WatchJob(
        self, request: store_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[store_pb2.WatchJobResponse]:
        async with status_codes(context):
            job_id = parse_uuid(request.job_id, "job_id")
            heartbeat = _seconds(request.heartbeat_interval, 5.0)
            async for event in watch(self.hub, self.jobs, job_id, heartbeat, request.after_seq):
                yield event

    async def ClaimJob(
        self, request: store_pb2.ClaimJobRequest, context: Context
    ) -> store_pb2.ClaimJobResponse:
        async with status_codes(context):
            if not request.worker_id:
                raise InvalidArgumentError("worker_id", "is required")
            lease = _seconds(request.lease, 30.0)
            wait = min(_seconds(request.wait_time, 0.0), MAX_WAIT_SECONDS)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while True:
                if context.cancelled():  # the worker is gone (stopping): a claim now would be lost
                    return store_pb2.ClaimJobResponse()
                claimed = await self.jobs.claim(request.worker_id, lease)
                if claimed is not None:
                    job, token = claimed
                    log.info("job claimed", job_id=job.id, worker=request.worker_id, attempt=job.attempts)
                    return store_pb2.ClaimJobResponse(job=job, lease_token=token)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return store_pb2.ClaimJobResponse()
                expiry = await self.jobs.next_lease_expiry()
                if expiry is not None:
                    until_expiry = (expiry - dt.datetime.now(dt.UTC)).total_seconds() + 0.05
                    remaining = min(remaining, max(until_expiry, 0.05))
                async with self.hub.jobs_changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.hub.jobs_changed.wait(), remaining)

    async def UpdateJob(
        self, request: store_pb2.UpdateJobRequest, context: Context
    ) -> store_pb2.UpdateJobResponse:
        async with status_codes(context):
            job, cancel = await self.jobs.update(request)
            return store_pb2.UpdateJobResponse(job=job, cancel_requested=cancel)

    async def PutArticles(
        self, request_iterator: AsyncIterator[store_pb2.PutArticlesRequest], context: Context
    ) -> store_pb2.PutArticlesResponse:
        counts = Counts()
        job: list[JobAttempt] = []  # from the first message that names the job
        async with status_codes(context):

            async def write(first: int, batch: list[common_pb2.Article]) -> None:
                items = list(enumerate(batch, first))
                await self.writer.write_articles(items, counts, job[0] if job else None)

            async def chunks() -> AsyncIterator[list[common_pb2.Article]]:
                async for r in request_iterator:
                    if r.job_id and not job:
                        job.append(JobAttempt(parse_uuid(r.job_id, "job_id"), r.attempt))
                    yield list(r.articles)

            await pipelined(self._batches(chunks()), write, self.settings.store_write_concurrency)
            return store_pb2.PutArticlesResponse(result=counts.result())

    async def PutStories(
        self, request_iterator: AsyncIterator[store_pb2.PutStoriesRequest], context: Context
    ) -> store_pb2.PutStoriesResponse:
        counts = Counts()
        async with status_codes(context):

            async def write(first: int, batch: list[common_pb2.Story]) -> None:
                await self.writer.write_stories(list(enumerate(batch, first)), counts)

            # stories of one job are announced in order: one batch at a time
            chunks = (list(r.stories) async for r in request_iterator)
            await pipelined(self._batches(chunks), write, 1)
            return store_pb2.PutStoriesResponse(result=counts.result())

    def _batches(self, chunks: AsyncIterator[list[T]]) -> AsyncIterator[list[T]]:
        return batches(chunks, self.settings.store_batch_size, self.settings.store_batch_max_delay_ms / 1000)

    async def GetStory(
        self, request: store_pb2.GetStoryRequest, context: Context
    ) -> store_pb2.GetStoryResponse:
        async with status_codes(context):
            story, articles = await self.reads.get_story(request.story_id)
            return store_pb2.GetStoryResponse(story=story, articles=articles)

    async def ListStories(
        self, request: store_pb2.ListStoriesRequest, context: Context
    ) -> store_pb2.ListStoriesResponse:
        async with status_codes(context):
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
        async with status_codes(context):
            found, missing = await self.reads.articles(list(request.article_ids))
            return store_pb2.BatchGetArticlesResponse(articles=found, missing_ids=missing)
