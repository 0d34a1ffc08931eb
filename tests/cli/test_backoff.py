"""The watch's reconnection waits: exponential from 0.25 s, capped at 2 s, jittered down by up to half."""

from __future__ import annotations

from cli.watch import Backoff


def test_waits_double_up_to_the_cap_with_jitter() -> None:
    backoff = Backoff()
    for attempt in range(12):
        ceiling = min(backoff.maximum, backoff.initial * 2**attempt)
        waits = [backoff.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempt, min(waits), max(waits))
        assert len(set(waits)) > 1  # jittered: watchers of one store do not reconnect in lockstep
    assert backoff.delay(50) <= 2.0
