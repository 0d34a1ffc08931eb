"""The limiter's limit-over-time history keeps the latest changes only: it does not grow for the life of
the process."""

from __future__ import annotations

from services.synthesizer.llm.limiter import HISTORY, AdaptiveLimiter


async def test_history_keeps_only_the_latest_changes() -> None:
    limiter = AdaptiveLimiter(1, 1, 10 * HISTORY)
    changes = 3 * HISTORY
    for _ in range(changes):  # slow start: every success raises the limit by one, a change each
        (await limiter.acquire()).success(0.01)
    assert limiter.limit == 1 + changes
    assert len(limiter.history) == HISTORY
    # the newest ones, in order, ending at the current limit
    assert [limit for _, limit in limiter.history] == list(range(changes - HISTORY + 2, changes + 2))
