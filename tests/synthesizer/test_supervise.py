"""The net under the pipeline's watchdogs: an attempt never hangs on its own tasks, and a slow attempt
that keeps moving is not a stall (plain asyncio tasks stand in for the pipeline's; the job-level behaviour
is covered by the fault suite). The loop's clock fast-forwards (``looptime``), so the net runs at its
default limit (three default watchdog periods: 60 s) and the default cancel grace, in milliseconds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from services.synthesizer.pipeline.jobrun import STALL_WATCHDOGS
from services.synthesizer.pipeline.supervise import supervise
from services.synthesizer.pipeline.watchdog import (
    CANCEL_GRACE,
    GUARD_GRACE,
    Activity,
    StreamStalledError,
    Watchdog,
    cancel_all,
    guarded,
    requests_watched,
)
from services.synthesizer.settings import SynthesizerSettings
from tests.synthesizer.test_session import in_loop_time

WATCHDOG = SynthesizerSettings.model_fields["worker_stream_watchdog_seconds"].default
LIMIT = STALL_WATCHDOGS * WATCHDOG


async def forever() -> None:
    await asyncio.Event().wait()


async def deaf(release: asyncio.Event) -> None:
    """A task that does not end when cancelled (as a stuck RPC might not), only when released."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


async def slow_store(requests: AsyncIterator[int], pause: float, taken: list[float]) -> str:
    """A store that takes one message every ``pause`` seconds, then answers."""
    loop = asyncio.get_running_loop()
    async for _ in requests:
        taken.append(loop.time())
        await asyncio.sleep(pause)
    return "stored"


async def stories(count: int) -> AsyncIterator[int]:
    for i in range(count):
        yield i


def test_a_write_that_keeps_moving_for_longer_than_the_idle_limit_is_not_a_stall() -> None:
    """A store that takes a message every half watchdog period, for three idle limits: no task ends
    meanwhile, yet the attempt is not stopped, and it ends when the write does."""

    async def scenario() -> tuple[float, list[float], bool]:
        loop = asyncio.get_running_loop()
        activity = Activity()
        dog = Watchdog("store.PutStories", WATCHDOG, activity=activity)
        taken: list[float] = []
        count = int(3 * LIMIT / (WATCHDOG / 2))
        call = slow_store(requests_watched(stories(count), dog), WATCHDOG / 2, taken)
        write = asyncio.create_task(guarded(dog, call), name="write stories")
        guard = asyncio.create_task(forever(), name="progress")
        await supervise({write}, {guard}, lambda: LIMIT, activity)
        return loop.time(), taken, guard.cancelled()

    ended, taken, guard_cancelled = in_loop_time(scenario())
    assert ended >= 3 * LIMIT
    assert len(taken) == int(3 * LIMIT / (WATCHDOG / 2))
    assert guard_cancelled


def test_no_progress_and_no_task_ending_is_a_stall_naming_the_tasks(caplog: pytest.LogCaptureFixture) -> None:
    """A stream moves for a while, then its call hangs with nothing owed (so its own watchdog is quiet):
    the net fires the idle limit after the last progress, naming the task, and logs its stack. A guard
    that keeps moving on a watchdog of its own (the cancel watch's heartbeats) does not hold it off."""

    async def scenario() -> tuple[float, float, bool, bool]:
        loop = asyncio.get_running_loop()
        activity = Activity()
        dog = Watchdog("store.PutStories", WATCHDOG, activity=activity)
        moved = asyncio.Event()

        async def write() -> None:
            for _ in range(4):
                await asyncio.sleep(WATCHDOG / 2)
                dog.progress()
            moved.set()
            await forever()

        async def heartbeats() -> None:
            beats = Watchdog("store.WatchJob", WATCHDOG)  # not one of the attempt's pipeline streams
            while True:
                await asyncio.sleep(1)
                beats.progress()

        quick = asyncio.create_task(asyncio.sleep(1), name="write articles")
        stuck = asyncio.create_task(write(), name="write stories")
        guard = asyncio.create_task(heartbeats(), name="cancel watch")
        with pytest.raises(StreamStalledError, match=r"for 60 s; still running: write stories$"):
            await supervise({quick, stuck}, {guard}, lambda: LIMIT, activity)
        assert moved.is_set()
        return loop.time(), activity.last, stuck.cancelled(), guard.cancelled()

    with caplog.at_level(logging.ERROR):
        stalled_at, last_progress, stuck_cancelled, guard_cancelled = in_loop_time(scenario())
    assert last_progress == pytest.approx(2 * WATCHDOG)
    assert stalled_at == pytest.approx(last_progress + LIMIT)
    assert stuck_cancelled
    assert guard_cancelled
    assert "pipeline task stalled" in caplog.text
    assert "write stories" in caplog.text


def test_no_task_ending_from_the_start_is_a_stall_at_the_limit() -> None:
    async def scenario() -> float:
        stuck = asyncio.create_task(forever(), name="write stories")
        with pytest.raises(StreamStalledError, match="still running: write stories"):
            await supervise({stuck}, set(), lambda: LIMIT)  # no activity given: counted from the start
        return asyncio.get_running_loop().time()

    assert in_loop_time(scenario()) == pytest.approx(LIMIT)


def test_without_an_idle_limit_slow_work_is_waited_for() -> None:
    async def scenario() -> tuple[bool, bool]:
        slow = asyncio.create_task(asyncio.sleep(5 * LIMIT), name="synthesize")
        guard = asyncio.create_task(forever(), name="progress")
        await supervise({slow}, {guard}, lambda: None)
        return slow.done(), guard.cancelled()

    assert in_loop_time(scenario()) == (True, True)


async def test_the_first_failure_is_raised_and_the_rest_cancelled() -> None:
    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("store.PutStories failed")

    other = asyncio.create_task(forever(), name="fetch")
    with pytest.raises(RuntimeError, match="PutStories"):
        await supervise({asyncio.create_task(fails()), other}, set(), lambda: None)
    assert other.cancelled()


def test_a_task_deaf_to_cancellation_is_abandoned_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """At the default grace: the stall is raised at the limit, the deaf task abandoned 5 s later."""

    async def scenario() -> float:
        release = asyncio.Event()
        stuck = asyncio.create_task(deaf(release), name="write stories")
        with pytest.raises(StreamStalledError):
            await supervise({stuck}, set(), lambda: LIMIT)
        ended = asyncio.get_running_loop().time()
        assert not stuck.done()
        assert await cancel_all([stuck], grace=0.05) == [stuck]
        release.set()
        await asyncio.wait_for(stuck, 5)
        return ended

    with caplog.at_level(logging.ERROR):
        ended = in_loop_time(scenario())
    assert ended == pytest.approx(LIMIT + CANCEL_GRACE)
    assert "did not end when cancelled" in caplog.text
    assert "write stories" in caplog.text


def test_a_stalled_stream_whose_call_ignores_cancel_still_fails_the_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The watchdog fires, the call it guards does not end when cancelled (the suspected cause of a job
    held in STORING): the stall is still raised, after the guard's grace, and the stuck call's stack is
    logged under the stream's name."""

    async def scenario() -> float:
        release = asyncio.Event()
        dog = Watchdog("store.PutStories", WATCHDOG)
        dog.expect()
        call = asyncio.ensure_future(deaf(release))
        with pytest.raises(StreamStalledError, match="PutStories"):
            await guarded(dog, call)
        ended = asyncio.get_running_loop().time()
        assert not call.done()
        release.set()
        await asyncio.wait_for(call, 5)
        return ended

    with caplog.at_level(logging.ERROR):
        ended = in_loop_time(scenario())
    assert ended == pytest.approx(WATCHDOG + GUARD_GRACE)
    assert "stream task did not end when cancelled" in caplog.text
    assert "store.PutStories" in caplog.text
