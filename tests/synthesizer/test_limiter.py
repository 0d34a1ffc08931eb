"""The adaptive limiter's permits: first come first served, one waiter per freed slot, cancellation
never leaks a slot, and a 429 lowers the limit before anyone else is let in."""

from __future__ import annotations

import asyncio

import pytest

from services.synthesizer.llm.limiter import AdaptiveLimiter, Permit


async def test_waiters_are_served_in_order_one_per_freed_slot() -> None:
    limiter = AdaptiveLimiter(1, 1, 1, static=True)
    first = await limiter.acquire()
    order: list[int] = []
    permits: list[Permit] = []

    async def wait(n: int) -> None:
        permits.append(await limiter.acquire())
        order.append(n)

    tasks = [asyncio.create_task(wait(n)) for n in range(5)]
    await asyncio.sleep(0)
    assert order == []
    first.success(0.1)
    for expected in range(5):
        await asyncio.sleep(0)
        assert order == list(range(expected + 1))  # exactly one more waiter got in
        assert limiter.in_flight == 1
        permits[-1].success(0.1)
    await asyncio.gather(*tasks)
    assert limiter.in_flight == 0


async def test_cancelled_waiters_never_hold_a_slot() -> None:
    limiter = AdaptiveLimiter(1, 1, 1, static=True)
    held = await limiter.acquire()
    pending = asyncio.create_task(limiter.acquire())
    granted_then_cancelled = asyncio.create_task(limiter.acquire())
    last = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    pending.cancel()  # cancelled while waiting: simply leaves the queue
    await asyncio.sleep(0)
    held.success(0.1)  # the slot goes to the next live waiter...
    granted_then_cancelled.cancel()  # ...which is cancelled before it runs: it must hand the slot on
    permit = await asyncio.wait_for(last, 1)
    assert pending.cancelled()
    assert granted_then_cancelled.cancelled()
    assert limiter.in_flight == 1
    permit.success(0.1)
    assert limiter.in_flight == 0


async def test_a_429_lowers_the_limit_before_a_waiter_is_let_in() -> None:
    limiter = AdaptiveLimiter(4, 1, 64, probe=False)  # four permits at once, no cold-start probe
    permits = [await limiter.acquire() for _ in range(4)]
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    permits[0].over_capacity()  # the backend serves the 3 calls still in flight
    await asyncio.sleep(0)
    assert limiter.limit == 3
    assert limiter.in_flight == 3
    assert not waiter.done()
    permits[1].success(0.1)  # a completion frees a slot for the waiter
    await asyncio.wait_for(waiter, 1)
    assert limiter.in_flight == 3


@pytest.mark.parametrize("handled", [True, False], ids=["its-task-ran", "only-its-future-cancelled"])
async def test_a_cancelled_waiter_is_not_demand(handled: bool) -> None:
    """The limit grows only while a live caller waits for a permit: a cancelled waiter (whether or not its
    task has run its handler yet) is not one, and holds back no later caller."""
    limiter = AdaptiveLimiter(1, 1, 8)
    held = await limiter.acquire()
    cancelled = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.busy
    cancelled.cancel()
    if handled:
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    held.success(0.1)
    assert (limiter.limit, limiter.in_flight) == (1, 0)  # nothing waited: nothing learnt
    permit = await asyncio.wait_for(limiter.acquire(), 1)  # room: the caller does not wait
    live = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    permit.success(0.1)  # a live waiter is demand: the limit grows, and the waiter gets the slot
    assert limiter.limit == 2
    (await asyncio.wait_for(live, 1)).success(0.1)
    assert cancelled.cancelled()
    assert limiter.in_flight == 0
