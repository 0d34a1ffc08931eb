"""Coalescing never inherits a cancellation: the shared call runs in its own task, a cancelled caller
only stops waiting, and the call is cancelled when no caller is left."""

from __future__ import annotations

import asyncio

import pytest

from services.synthesizer.llm.coalesce import Coalescer


class Call:
    """A shared call that finishes when told to, and records how it ended."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.runs = 0
        self.cancelled = False

    async def __call__(self) -> str:
        self.runs += 1
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return f"result {self.runs}"


async def test_a_joined_caller_gets_the_result_when_the_starter_is_cancelled() -> None:
    coalescer: Coalescer[str] = Coalescer()
    call = Call()
    owner = asyncio.create_task(coalescer.run("k", call))
    await call.started.wait()
    joiner = asyncio.create_task(coalescer.run("k", call))
    await asyncio.sleep(0)  # let the joiner register (it does so before its first await)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert not call.cancelled, "the shared call must outlive the caller that started it"
    call.release.set()
    assert await asyncio.wait_for(joiner, 5) == ("result 1", True)
    assert (call.runs, coalescer.coalesced, coalescer.in_flight) == (1, 1, 0)


async def test_the_shared_call_is_cancelled_when_no_caller_is_left() -> None:
    coalescer: Coalescer[str] = Coalescer()
    call = Call()
    callers = [asyncio.create_task(coalescer.run("k", call)) for _ in range(3)]
    await call.started.wait()
    for task in callers:
        task.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    await asyncio.sleep(0)  # the shared task handles its cancellation
    assert call.cancelled
    assert coalescer.in_flight == 0
    # the next identical request starts a fresh call instead of joining the cancelled one
    call.release.set()
    assert await asyncio.wait_for(coalescer.run("k", call), 5) == ("result 2", False)


async def test_an_error_reaches_every_caller() -> None:
    coalescer: Coalescer[str] = Coalescer()
    gate = asyncio.Event()

    async def failing() -> str:
        await gate.wait()
        raise ValueError("backend said no")

    callers = [asyncio.create_task(coalescer.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert coalescer.in_flight == 0
