"""The watch's reconnections (cli.watch.follow, on the runtime's retry policy): every event once and in
order across lost streams, waits from 0.25 s doubling with jitter, a fresh outage after each
reconnection, and an end after ``reconnect_for`` seconds. A narrow unit test over a scripted stub; the
real store restart is tests/cli/test_reconnect.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from storywire.v1 import common_pb2, store_pb2

from cli.client import REJECTED, UNREACHABLE, CliError
from cli.watch import follow

Event = store_pb2.WatchJobResponse


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "connection refused"
    )


def progress(seq: int) -> Event:
    return Event(sequence=seq, progress=common_pb2.StageProgress(stage=common_pb2.STAGE_FETCH, done=seq))


def snapshot(seq: int, state: common_pb2.JobState.ValueType) -> Event:
    return Event(sequence=seq, snapshot=common_pb2.Job(id="j", state=state))


@dataclass
class ScriptedStore:
    """WatchJob answers with the next script: its events, then an error (or the stream's end)."""

    scripts: list[tuple[list[Event], Exception | None]]
    asked_after: list[int] = field(default_factory=list)

    def WatchJob(self, request: store_pb2.WatchJobRequest) -> AsyncIterator[Event]:
        self.asked_after.append(request.after_seq)
        events, error = self.scripts.pop(0) if self.scripts else ([], unavailable())
        return self._stream(events, error)

    async def _stream(self, events: list[Event], error: Exception | None) -> AsyncIterator[Event]:
        for event in events:
            yield event
        if error is not None:
            raise error


async def run_follow(store: ScriptedStore, reconnect_for: float) -> tuple[list[Event], list[str]]:
    seen: list[Event] = []
    said: list[str] = []
    await asyncio.wait_for(
        follow(store, "127.0.0.1:1", "j", on_event=seen.append, say=said.append, reconnect_for=reconnect_for),  # type: ignore[arg-type]
        60,
    )
    return seen, said


def waits(said: list[str]) -> list[float]:
    return [float(m.group(1)) for line in said if (m := re.search(r"reconnecting in ([\d.]+) s", line))]


async def test_every_event_once_across_lost_streams_with_growing_waits() -> None:
    running, done = common_pb2.JOB_STATE_SYNTHESIZING, common_pb2.JOB_STATE_DONE
    store = ScriptedStore(
        [
            ([snapshot(0, running), progress(1), progress(2)], unavailable()),
            ([], unavailable()),
            ([], unavailable()),
            ([progress(3)], None),  # the stream ends before the job did: a new outage
            ([progress(4), snapshot(5, done)], None),
        ]
    )
    seen, said = await run_follow(store, reconnect_for=30)
    assert [e.sequence for e in seen] == [0, 1, 2, 3, 4, 5]
    assert store.asked_after == [0, 2, 2, 2, 3]  # resumed after the last event received
    w = waits(said)
    assert len(w) == 4, said
    # one outage: 0.25 s, 0.5 s, 1 s (each plus up to 0.1 s); after a reconnection, 0.25 s again
    for wait, base in zip(w, [0.25, 0.5, 1.0, 0.25], strict=True):
        assert base <= wait <= base + 0.11, (w, said)
    assert "resuming after event 2" in said[3]
    assert "resuming after event 3" in said[-1]
    assert all("lost the store at 127.0.0.1:1 (" in line for line in said if "reconnecting" in line)


async def test_a_store_that_stays_away_ends_it_after_reconnect_for() -> None:
    store = ScriptedStore([])
    with pytest.raises(CliError) as info:
        await run_follow(store, reconnect_for=1.0)
    assert info.value.code == UNREACHABLE
    assert "is unreachable (connection refused); gave up after 1 s of reconnecting" in str(info.value)
    assert len(store.asked_after) >= 3  # it kept trying for the second


async def test_no_reconnection_with_reconnect_for_zero_and_none_for_a_rejection() -> None:
    with pytest.raises(CliError) as info:
        await run_follow(ScriptedStore([]), reconnect_for=0)
    assert info.value.code == UNREACHABLE
    rejected = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), "job j not found"
    )
    store = ScriptedStore([([], rejected)])
    with pytest.raises(CliError) as info:
        await run_follow(store, reconnect_for=30)
    assert info.value.code == REJECTED
    assert store.asked_after == [0]
