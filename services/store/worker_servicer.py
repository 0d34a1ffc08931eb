"""The StoreWorkerService gRPC handlers: the workers' API (claim jobs, record progress, write articles
and stories). Only callers with the service token reach them (:mod:`runtime.edge`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import grpc
from storywire.v1 import common_pb2, store_pb2, store_pb2_grpc

from runtime.batching import batches, pipelined
from runtime.logging import get_logger
from services.store.events import EventHub
from services.store.jobs import Jobs
from services.store.servicer import seconds
from services.store.settings import StoreSettings
from services.store.validation import InvalidArgumentError, parse_uuid
from services.store.writes import Counts, JobAttempt, Writer

log = get_logger(__name__)
MAX_WAIT_SECONDS = 60.0
T = TypeVar("T")
#: an item of a write stream with the lease token of the message it came in ("" = unfenced)
Leased = tuple[str, T]
Context = grpc.aio.ServicerContext[Any, Any]


class StoreWorkerServicer(store_pb2_grpc.StoreWorkerServiceServicer):
    def __init__(self, settings: StoreSettings, jobs: Jobs, writer: Writer, hub: EventHub) -> None:
        self.settings = settings
        self.jobs = jobs
        self.writer = writer
        self.hub = hub

    async def ClaimJob(
        self, request: store_pb2.ClaimJobRequest, context: Context
    ) -> store_pb2.ClaimJobResponse:
        if not request.worker_id:
            raise InvalidArgumentError("worker_id", "is required")
        lease = seconds(request.lease, 30.0)
        wait = min(seconds(request.wait_time, 0.0), MAX_WAIT_SECONDS)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if context.cancelled() or self.hub.closing.is_set():  # the worker, or this replica, is stopping:
                return store_pb2.ClaimJobResponse()  # a claim now would be lost
            claimed = await self.jobs.claim(request.worker_id, lease, self.settings.worker_max_attempts)
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
        job, cancel = await self.jobs.update(request)
        return store_pb2.UpdateJobResponse(job=job, cancel_requested=cancel)

    async def PutArticles(
        self, request_iterator: AsyncIterator[store_pb2.PutArticlesRequest], context: Context
    ) -> store_pb2.PutArticlesResponse:
        counts = Counts()
        job: list[JobAttempt] = []  # from the first message that names the job

        async def write(items: list[tuple[int, common_pb2.Article]], lease: str) -> None:
            await self.writer.write_articles(items, counts, job[0] if job else None, lease)

        requests = self.hub.until_closing(request_iterator)

        async def chunks() -> AsyncIterator[list[Leased[common_pb2.Article]]]:
            async for r in requests:
                if r.job_id and not job:
                    job.append(JobAttempt(parse_uuid(r.job_id, "job_id"), r.attempt))
                if r.lease_token and not job:
                    raise InvalidArgumentError("job_id", "is required with a lease_token")
                yield [(r.lease_token, a) for a in r.articles]

        await pipelined(self._batches(chunks()), by_lease(write), self.settings.store_write_concurrency)
        requests.raise_if_stopped()  # after writing what was received
        return store_pb2.PutArticlesResponse(result=counts.result(), lease_lost=counts.lease_lost)

    async def PutStories(
        self, request_iterator: AsyncIterator[store_pb2.PutStoriesRequest], context: Context
    ) -> store_pb2.PutStoriesResponse:
        counts = Counts()

        async def write(items: list[tuple[int, common_pb2.Story]], lease: str) -> None:
            await self.writer.write_stories(items, counts, lease)

        # stories of one job are announced in order: one batch at a time
        requests = self.hub.until_closing(request_iterator)
        chunks = ([(r.lease_token, s) for s in r.stories] async for r in requests)
        await pipelined(self._batches(chunks), by_lease(write), 1)
        requests.raise_if_stopped()  # after writing what was received
        return store_pb2.PutStoriesResponse(result=counts.result(), lease_lost=counts.lease_lost)

    def _batches(self, chunks: AsyncIterator[list[T]]) -> AsyncIterator[list[T]]:
        return batches(chunks, self.settings.store_batch_size, self.settings.store_batch_max_delay_ms / 1000)


def by_lease(
    write: Callable[[list[tuple[int, T]], str], Awaitable[None]],
) -> Callable[[int, list[Leased[T]]], Coroutine[Any, Any, None]]:
    """A batch writer for ``pipelined`` over leased items: each run of items of the same lease token (a
    batch may span messages, each with its own token) is written, and fenced, by itself."""

    async def write_batch(first: int, batch: Sequence[Leased[T]]) -> None:
        numbered = enumerate(batch, first)
        for lease, run in itertools.groupby(numbered, key=lambda item: item[1][0]):
            await write([(index, item) for index, (_, item) in run], lease)

    return write_batch
