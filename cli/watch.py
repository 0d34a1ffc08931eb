"""Following a job: WatchJob with a progress bar per stage, resumed after a lost stream.

When the stream breaks (the store restarts, a connection drops), the CLI says so on stderr, waits with
jittered exponential backoff and watches again from the last event it received (``after_seq``), so no
event is shown twice or missed. Only a store that stays unreachable for ``reconnect_for`` seconds ends it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from storywire.v1 import common_pb2, store_pb2

from cli.client import UNREACHABLE, CliError, rpc_error, unreachable_reason
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


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnection attempt ``n`` (0-based): exponential, capped, with full jitter."""

    initial: float = 0.25
    maximum: float = 2.0

    def delay(self, attempt: int) -> float:
        ceiling: float = min(self.maximum, self.initial * 2.0**attempt)
        return random.uniform(0.5, 1.0) * ceiling  # noqa: S311 - jitter, not cryptography


async def follow(
    store: StoreStub,
    address: str,
    job_id: str,
    *,
    on_event: Callable[[store_pb2.WatchJobResponse], None],
    say: Callable[[str], None],
    reconnect_for: float,
    backoff: Backoff = Backoff(),
) -> None:
    """Deliver every event of the job's watch to ``on_event`` until its final snapshot."""
    loop = asyncio.get_running_loop()
    after = 0  # sequence number of the last event received (the snapshot that opens a watch has 0)
    outage_since: float | None = None
    attempt = 0
    while True:
        try:
            async for event in store.WatchJob(store_pb2.WatchJobRequest(job_id=job_id, after_seq=after)):
                if outage_since is not None:
                    say(f"reconnected to the store at {address}; resuming after event {after}")
                    outage_since, attempt = None, 0
                after = max(after, event.sequence)
                on_event(event)
                if event.WhichOneof("event") == "snapshot" and event.snapshot.state in FINAL:
                    return
            reason = "the stream ended before the job did"
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise rpc_error("store", address, exc) from None
            reason = unreachable_reason(address, exc.details() or "")
        now = loop.time()
        outage_since = now if outage_since is None else outage_since
        left = reconnect_for - (now - outage_since)
        if left <= 0:
            raise CliError(
                f"the store service at {address} is unreachable ({reason}); "
                f"gave up after {reconnect_for:g} s of reconnecting",
                UNREACHABLE,
            )
        delay = min(backoff.delay(attempt), left)
        attempt += 1
        say(f"lost the store at {address} ({reason}); reconnecting in {delay:.1f} s")
        await asyncio.sleep(delay)


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
