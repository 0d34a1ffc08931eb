"""The pipeline coordinator: each synthesizer replica claims queued jobs from the store under a lease
and runs them: fetcher stream -> clustering and LLM (this process's engine) -> store streams, pipelined,
with progress and lease renewal through UpdateJob. A replica that is stopping gives its jobs back at once
(``drain``); a job whose worker dies is resumed by any replica once its short lease expires; writes are
idempotent and the stories an earlier attempt stored are reused."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from opentelemetry import propagate, trace
from storywire.v1 import common_pb2, fetcher_pb2_grpc, store_pb2

from runtime.client import ClientSecurity, open_channel
from runtime.logging import get_logger
from runtime.retry import Retry, reconnect
from runtime.stubs import FetcherStub, StoreAllStub
from services.synthesizer.engine import Engine
from services.synthesizer.pipeline.jobrun import JobRun
from services.synthesizer.settings import SynthesizerSettings

log = get_logger(__name__)
tracer = trace.get_tracer("storywire.synthesizer")
CLAIM_WAIT_SECONDS = 20
OUTAGE_WARNING_SECONDS = 5.0
#: ClaimJob again while the store does not answer: waits from 0.1 s growing to 10 s, no attempt limit
CLAIM_RETRY = reconnect(10.0)


class Coordinator:
    def __init__(self, settings: SynthesizerSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        security = ClientSecurity.for_service(settings)  # TLS when configured, the service token
        self._store_channel = open_channel(settings.store_address, settings.max_message_bytes, security)
        self._fetcher_channel = open_channel(settings.fetcher_address, settings.max_message_bytes, security)
        # the workers API (claim, update, writes) and the client API (its own watch, stored stories)
        self.store = StoreAllStub(self._store_channel)
        self.fetcher: FetcherStub = fetcher_pb2_grpc.FetcherServiceStub(self._fetcher_channel)
        self._loops: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()  # loops running a job (the others wait in ClaimJob)
        self.stopping = False
        # the deadline of every unary call: well within the lease, so a hung call cannot outlive it
        self.rpc_timeout = max(settings.worker_lease_seconds / 2, 1.0)

    def start(self) -> None:
        for n in range(self.settings.worker_concurrent_jobs):
            self._loops.append(asyncio.create_task(self._claim_loop(), name=f"job-worker-{n}"))
        log.info("job worker started", worker=self.worker_id, slots=len(self._loops),
                 store=self.settings.store_address, fetcher=self.settings.fetcher_address)  # fmt: skip

    async def drain(self) -> None:
        """Stop claiming and give every running job back to the queue at once (SIGTERM)."""
        if self.stopping:
            return
        self.stopping = True
        # first the loops waiting in ClaimJob: their cancelled long polls must not claim the jobs given back
        idle = [t for t in self._loops if t not in self._running]
        for task in idle:
            task.cancel()
        await asyncio.gather(*idle, return_exceptions=True)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)

    async def stop(self) -> None:
        await self.drain()
        await self._store_channel.close()
        await self._fetcher_channel.close()

    async def _claim_loop(self) -> None:
        lease = Duration()
        lease.FromMilliseconds(int(self.settings.worker_lease_seconds * 1000))
        request = store_pb2.ClaimJobRequest(
            worker_id=self.worker_id, lease=lease, wait_time=Duration(seconds=CLAIM_WAIT_SECONDS)
        )
        while True:
            outage = ClaimOutage(self.settings.store_address, asyncio.get_running_loop().time)
            async for attempt in CLAIM_RETRY.retries(grpc.aio.AioRpcError, report=outage.report):
                with attempt:
                    # wait_for_ready: a store that is not listening yet is waited for, not reported as down
                    reply = await self.store.ClaimJob(
                        request, timeout=CLAIM_WAIT_SECONDS + 10, wait_for_ready=True
                    )
            outage.over()
            if reply.HasField("job"):
                task = asyncio.current_task()
                assert task is not None
                self._running.add(task)
                try:
                    await self._run(reply.job, reply.lease_token)
                finally:
                    self._running.discard(task)

    async def _run(self, job: common_pb2.Job, lease_token: str) -> None:
        parent = propagate.extract({"traceparent": job.traceparent}) if job.traceparent else None
        attributes: dict[str, Any] = {"storywire.job.id": job.id, "storywire.job.attempt": job.attempts}
        with tracer.start_as_current_span("job.run", context=parent, attributes=attributes):
            await JobRun(self, job, lease_token).run()

    def articles_in(
        self, queue: asyncio.Queue[common_pb2.Article | None]
    ) -> AsyncIterator[common_pb2.Article]:
        return QueueInput(queue)


class ClaimOutage:
    """What the claim loop says while the store does not answer. A store still connecting to PostgreSQL
    answers UNAVAILABLE for a moment at start: only an outage that lasts deserves a warning (then one
    every 10 s), and its end a line of its own."""

    def __init__(self, address: str, clock: Callable[[], float]) -> None:
        self.address, self.clock = address, clock
        self.since: float | None = None
        self.last_warning = 0.0

    def report(self, retry: Retry) -> None:
        now = self.clock()
        self.since = self.since or now
        if now - self.since > OUTAGE_WARNING_SECONDS and now - self.last_warning > 10:
            self.last_warning = now
            cause = retry.cause
            log.warning(
                "cannot claim jobs: the store is unavailable",
                address=self.address,
                code=cause.code().name if isinstance(cause, grpc.aio.AioRpcError) else "",
                detail=cause.details() if isinstance(cause, grpc.aio.AioRpcError) else str(cause),
                for_seconds=round(now - self.since),
                retry_in_seconds=round(retry.wait, 2),
            )

    def over(self) -> None:
        if self.last_warning:
            log.info("the store is available again", address=self.address)


class QueueInput:
    """A queue as an async iterator that a timeout may interrupt: cancelling ``__anext__`` (as
    ``asyncio.wait_for`` does) loses no item and does not end the input, unlike an async generator,
    which a cancellation inside it closes for good."""

    def __init__(self, queue: asyncio.Queue[common_pb2.Article | None]) -> None:
        self.queue = queue
        self.ended = False

    def __aiter__(self) -> QueueInput:
        return self

    async def __anext__(self) -> common_pb2.Article:
        if self.ended:
            raise StopAsyncIteration
        item = await self.queue.get()
        if item is None:
            self.ended = True
            raise StopAsyncIteration
        return item
