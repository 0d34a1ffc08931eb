"""Following a job: WatchJob with a progress bar per stage, resumed after a lost stream.

When the stream breaks (the store restarts, a connection drops), the CLI says so on stderr, waits as the
runtime's retry policy says (jittered exponential backoff) and watches again from the last event it
received (``after_seq``), so no event is shown twice or missed. Only a store that stays unreachable for
``reconnect_for`` seconds ends it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

import grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from storywire.v1 import common_pb2, store_pb2

from cli.client import UNREACHABLE, CliError, rpc_error, unreachable_reason
from runtime.retry import Backoff, Retry
from runtime.stubs import StoreStub

FINAL = {common_pb2.JOB_STATE_DONE, common_pb2.JOB_STATE_FAILED, common_pb2.JOB_STATE_CANCELLED}
# messages to the user (errors, reconnections) on stderr, never wrapped: they are read by scripts too
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
LABELS = {
    common_pb2.STAGE_FETCH: "fetched",
    common_pb2.STAGE_CLUSTER: "clustered",
    common_pb2.STAGE_SYNTHESIZE: "synthesized",
    common_pb2.STAGE_STORE: "stored",
}


#: waits between reconnections: 0.25 s doubling up to 2 s, each plus a random part of up to 0.1 s (so the
#: watchers of one store do not reconnect in lockstep); the runtime's retry policy
RECONNECT = Backoff(attempts=None, initial=0.25, maximum=2.0, jitter=0.1)


class LostError(Exception):
    """The watch stream broke (the store is unavailable) or ended before the job did."""


async def _watch(
    store: StoreStub, address: str, job_id: str, after: int
) -> AsyncGenerator[store_pb2.WatchJobResponse, None]:
    """One WatchJob stream after event ``after``; a store that goes away or a stream that ends early
    raise LostError, any other failure the CLI's error for it."""
    try:
        async for event in store.WatchJob(store_pb2.WatchJobRequest(job_id=job_id, after_seq=after)):
            yield event
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise rpc_error("store", address, exc) from None
        raise LostError(unreachable_reason(address, exc.details() or "")) from None
    raise LostError("the stream ended before the job did")


async def follow(
    store: StoreStub,
    address: str,
    job_id: str,
    *,
    on_event: Callable[[store_pb2.WatchJobResponse], None],
    say: Callable[[str], None],
    reconnect_for: float,
    policy: Backoff = RECONNECT,
) -> None:
    """Deliver every event of the job's watch to ``on_event`` until its final snapshot.

    Each outage (from the loss of a stream to the first event of a new one) is one run of the retry
    policy, limited to ``reconnect_for`` seconds; the loss itself is its first failed attempt, so the
    policy waits, and says so, before the first reconnection."""
    outage_policy = policy.with_timeout(reconnect_for) if reconnect_for > 0 else policy.with_attempts(1)
    after = 0  # sequence number of the last event received (the snapshot that opens a watch has 0)
    lost: LostError | None = None  # how the last stream ended, when it ended early

    def reconnecting(retry: Retry) -> None:
        say(f"lost the store at {address} ({retry.cause}); reconnecting in {retry.wait:.1f} s")

    while True:
        try:
            async for attempt in outage_policy.retries(LostError, report=reconnecting):
                with attempt:
                    if lost is not None and attempt.num == 1:
                        raise lost
                    stream = _watch(store, address, job_id, after)
                    first = await anext(stream)
        except LostError as exc:
            raise CliError(
                f"the store service at {address} is unreachable ({exc}); "
                f"gave up after {reconnect_for:g} s of reconnecting",
                UNREACHABLE,
            ) from None
        if lost is not None:
            say(f"reconnected to the store at {address}; resuming after event {after}")
            lost = None
        try:
            async with aclosing(stream):
                event = first
                while not _final(event):
                    after = max(after, event.sequence)
                    on_event(event)
                    event = await anext(stream)
                on_event(event)
                return
        except LostError as exc:
            lost = exc


def _final(event: store_pb2.WatchJobResponse) -> bool:
    return event.WhichOneof("event") == "snapshot" and event.snapshot.state in FINAL


async def watch_job(
    store: StoreStub, address: str, job_id: str, *, console: Console, quiet: bool, reconnect_for: float
) -> common_pb2.Job:
    """Follow the job with a progress bar per stage (none when ``quiet``); returns its final snapshot."""
    columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(*columns, console=console, disable=quiet, transient=False)
    bars = {stage: progress.add_task(label, total=None) for stage, label in LABELS.items()}
    last: list[common_pb2.Job] = []
    synth_total = 0

    def show(p: common_pb2.StageProgress) -> None:
        nonlocal synth_total
        if p.stage == common_pb2.STAGE_SYNTHESIZE:
            synth_total = p.total
        total = (synth_total or p.total or None) if p.stage == common_pb2.STAGE_STORE else (p.total or None)
        progress.update(bars[p.stage], completed=p.done, total=total)

    def on_event(event: store_pb2.WatchJobResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "snapshot":
            last[:] = [event.snapshot]
            for p in sorted(event.snapshot.stages, key=lambda p: p.stage):
                show(p)
        elif kind == "progress":
            show(event.progress)
        elif kind == "warning" and not quiet:
            progress.console.print(f"[yellow]warning:[/yellow] {event.warning}", highlight=False)

    def say(message: str) -> None:
        stderr.print(f"[yellow]{message}[/yellow]")

    with progress:
        await follow(store, address, job_id, on_event=on_event, say=say, reconnect_for=reconnect_for)
    return last[0]
