"""The lease side of a job run: its state as the store sees it, updates that renew the lease, the
release that gives the job back at once, a watch that notices a cancellation within milliseconds, and the
lease token every write of the attempt carries (a write the store fences out means the lease is lost).
Every unary call has a deadline (``Coordinator.rpc_timeout``), every stream a progress watchdog."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
from google.protobuf.duration_pb2 import Duration
from storywire.v1 import common_pb2, store_pb2

from runtime.logging import get_logger
from runtime.telemetry import current_trace_id
from services.synthesizer.pipeline.ledger import Ledger
from services.synthesizer.pipeline.watchdog import StreamStalledError, Watchdog, guarded

if TYPE_CHECKING:
    from services.synthesizer.pipeline.coordinator import Coordinator

log = get_logger(__name__)
PROGRESS_INTERVAL = 0.25
S = common_pb2


class CancelledByUserError(Exception):
    """The job was cancelled in the store."""


class LeaseLostError(Exception):
    """Another worker owns the job now."""


class RpcFailedError(Exception):
    """A call to another service failed; the message names the service and the call."""


def fenced_out(reply: store_pb2.PutArticlesResponse | store_pb2.PutStoriesResponse) -> None:
    """Raise LeaseLostError when the store refused a write of this attempt because its lease is not the
    job's live lease any more (re-claimed by another worker, or ended): the attempt stops as one that lost
    its job; what the store refused is neither a failure of the job nor written again."""
    if reply.lease_lost:
        raise LeaseLostError("the store refused a write under this attempt's lease: the job moved on")


def failed(call: str, exc: grpc.aio.AioRpcError) -> RpcFailedError:
    what = "timed out" if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED else "failed"
    return RpcFailedError(f"{call} {what}: {exc.code().name}: {exc.details()}")


class LeasedRun:
    """A claimed job's state and its conversation with the store about it."""

    def __init__(self, coordinator: Coordinator, job: common_pb2.Job, lease_token: str) -> None:
        self.c = coordinator
        self.job = job
        self.token = lease_token
        self.stages = {
            s: S.StageProgress(stage=s) for s in (S.STAGE_FETCH, S.STAGE_CLUSTER, S.STAGE_SYNTHESIZE)
        }
        self.totals = S.SynthesisTotals()
        self.state = S.JOB_STATE_FETCHING
        self.warnings: list[str] = []
        self.ledger = Ledger()
        self.retired: list[store_pb2.RetiredStory] = []  # to announce with the next update
        self.reused = 0
        self._sources: set[str] = set()
        self._first_error = ""
        self._written: dict[str, common_pb2.Story] = {}  # stories this attempt wrote, by cluster key
        self._cluster_sizes: dict[str, int] = {}
        self._final_keys: list[str] = []  # from the synthesis summary, when it names them
        self._dirty = asyncio.Event()
        self._watchdog = coordinator.settings.worker_stream_watchdog_seconds

    def _stamp(self, stage: common_pb2.Stage.ValueType, finished: bool = False) -> None:
        progress = self.stages[stage]
        if not progress.HasField("started_at"):
            progress.started_at.GetCurrentTime()
        if finished:
            progress.finished_at.GetCurrentTime()
        self._dirty.set()

    def _request(
        self, state: common_pb2.JobState.ValueType, error: str, renew_only: bool
    ) -> store_pb2.UpdateJobRequest:
        warnings, self.warnings = self.warnings, []
        retired, self.retired = self.retired, []
        request = store_pb2.UpdateJobRequest(
            job_id=self.job.id, lease_token=self.token, state=state, error=error, trace_id=current_trace_id(),
            warnings=warnings, retired=retired,
        )  # fmt: skip
        if not renew_only:
            request.stages.extend(self.stages.values())
            request.totals.CopyFrom(self.totals)
        if state == S.JOB_STATE_DONE:
            request.final_cluster_keys.extend(self._final_keys or sorted(self._written))
            self.ledger.done_request(request)
        return request

    async def _update(
        self,
        state: common_pb2.JobState.ValueType = S.JOB_STATE_UNSPECIFIED,
        error: str = "",
        renew_only: bool = False,
    ) -> common_pb2.Job:
        request = self._request(state, error, renew_only)
        try:
            reply = await self.c.store.UpdateJob(request, timeout=self.c.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise LeaseLostError(exc.details() or "lease lost") from None
            raise failed("store.UpdateJob", exc) from None
        if reply.cancel_requested:
            raise CancelledByUserError
        return reply.job

    async def _release(self, reason: str, delay: float, *, handover: bool = False) -> None:
        """Give the job back now (queued, with its progress); a store that is away is waited for within
        the call's deadline (it may be restarting: then the job is claimable again well before its lease
        would run out); when the store cannot be told, the lease runs out instead. A ``handover`` (the
        worker is stopping) does not count as one of the job's attempts."""
        retry_after = Duration()
        retry_after.FromMilliseconds(int(delay * 1000))
        request = self._request(S.JOB_STATE_UNSPECIFIED, reason, renew_only=False)
        request.release = True
        request.retry_after.CopyFrom(retry_after)
        request.handover = handover
        try:
            await self.c.store.UpdateJob(request, timeout=self.c.rpc_timeout, wait_for_ready=True)
            log.info("job given back", job_id=self.job.id, reason=reason, retry_in_seconds=delay)
        except grpc.aio.AioRpcError as exc:
            log.warning("could not give the job back; its lease will run out", job_id=self.job.id,
                        error=f"{exc.code().name}: {exc.details()}")  # fmt: skip

    async def _progress_loop(self) -> None:
        """Report progress when something changed, and renew the lease every quarter of it otherwise."""
        renew_every = self.c.settings.worker_lease_seconds / 4
        while True:
            changed = True
            try:
                await asyncio.wait_for(self._dirty.wait(), renew_every)
            except TimeoutError:
                changed = False
            self._dirty.clear()
            await self._update(renew_only=not changed)
            await asyncio.sleep(PROGRESS_INTERVAL)

    async def _watch_cancel(self) -> None:
        """Stop the run as soon as the store says the job was cancelled (pushed, not polled). When the
        watch itself fails, cancellation is still noticed at the next lease renewal."""
        heartbeat = Duration()
        heartbeat.FromMilliseconds(1000)
        request = store_pb2.WatchJobRequest(job_id=self.job.id, heartbeat_interval=heartbeat)
        dog = Watchdog("store.WatchJob", self._watchdog)
        dog.expect()

        async def follow() -> None:
            async for event in self.c.store.WatchJob(request):
                dog.progress()
                if event.WhichOneof("event") == "snapshot" and event.snapshot.state == S.JOB_STATE_CANCELLED:
                    raise CancelledByUserError

        try:
            await guarded(dog, follow())
        except (grpc.aio.AioRpcError, StreamStalledError) as exc:
            log.info(
                "job cancel watch ended; renewals still notice a cancel", job_id=self.job.id, error=str(exc)
            )
