"""The limiter's limit-over-time history keeps the latest changes only: it does not grow for the life of
the process."""

from __future__ import annotations

import asyncio

from services.synthesizer.llm.limiter import HISTORY, AdaptiveLimiter, Permit


async def test_history_keeps_only_the_latest_changes() -> None:
    limiter = AdaptiveLimiter(1, 1, 10 * HISTORY)
    changes = 3 * HISTORY
    held: list[Permit] = [await limiter.acquire()]
    for _ in range(changes):
        waiter = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)  # it queues: every permit is held
        assert not waiter.done()
        # a call completes while another waits for a permit (demand): slow start raises the limit by one
        held.pop().success()
        held.append(await waiter)
        while limiter.in_flight < limiter.limit:  # the new slot taken too, so that the next caller waits
            held.append(await limiter.acquire())
    assert limiter.limit == 1 + changes
    assert len(limiter.history) == HISTORY
    # the newest ones, in order, ending at the current limit
    assert [limit for _, limit in limiter.history] == list(range(changes - HISTORY + 2, changes + 2))
