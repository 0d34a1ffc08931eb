"""The net under the pipeline's watchdogs: an attempt never hangs on its own tasks (plain asyncio tasks
stand in for the pipeline's; the job-level behaviour is covered by the fault suite)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.synthesizer.pipeline.supervise import supervise
from services.synthesizer.pipeline.watchdog import StreamStalledError, Watchdog, cancel_all, guarded


async def forever() -> None:
    await asyncio.Event().wait()


async def deaf(release: asyncio.Event) -> None:
    """A task that does not end when cancelled (as a stuck RPC might not), only when released."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


async def test_no_task_ending_within_the_idle_limit_is_a_stall_naming_the_tasks() -> None:
    quick = asyncio.create_task(asyncio.sleep(0.01), name="write articles")
    stuck = asyncio.create_task(forever(), name="write stories")
    guard = asyncio.create_task(forever(), name="progress")
    with pytest.raises(StreamStalledError, match="still running: write stories"):
        await asyncio.wait_for(supervise({quick, stuck}, {guard}, lambda: 0.2), 10)
    assert stuck.cancelled()
    assert guard.cancelled()


async def test_without_an_idle_limit_slow_work_is_waited_for() -> None:
    slow = asyncio.create_task(asyncio.sleep(0.3), name="synthesize")
    guard = asyncio.create_task(forever(), name="progress")
    await asyncio.wait_for(supervise({slow}, {guard}, lambda: None), 10)
    assert slow.done()
    assert guard.cancelled()


async def test_the_first_failure_is_raised_and_the_rest_cancelled() -> None:
    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("store.PutStories failed")

    other = asyncio.create_task(forever(), name="fetch")
    with pytest.raises(RuntimeError, match="PutStories"):
        await supervise({asyncio.create_task(fails()), other}, set(), lambda: None)
    assert other.cancelled()


async def test_a_task_deaf_to_cancellation_is_abandoned_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()
    stuck = asyncio.create_task(deaf(release), name="write stories")
    with caplog.at_level(logging.ERROR), pytest.raises(StreamStalledError):
        await asyncio.wait_for(supervise({stuck}, set(), lambda: 0.1, grace=0.2), 10)
    assert not stuck.done()
    text = caplog.text
    assert "did not end when cancelled" in text
    assert "write stories" in text
    left = await cancel_all([stuck], grace=0.05)
    assert left == [stuck]
    release.set()
    await asyncio.wait_for(stuck, 5)


async def test_a_stalled_stream_whose_call_ignores_cancel_still_fails_the_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The watchdog fires, the call it guards does not end when cancelled (the suspected cause of a job
    held in STORING): the stall is still raised, after the guard's grace, and the stuck call's stack is
    logged under the stream's name."""
    release = asyncio.Event()
    dog = Watchdog("store.PutStories", 0.2)
    dog.expect()
    call = asyncio.ensure_future(deaf(release))
    with caplog.at_level(logging.ERROR), pytest.raises(StreamStalledError, match="PutStories"):
        await asyncio.wait_for(guarded(dog, call), 10)
    assert "stream task did not end when cancelled" in caplog.text
    assert "store.PutStories" in caplog.text
    assert not call.done()
    release.set()
    await asyncio.wait_for(call, 5)
