"""The one retry policy (runtime.retry): retries until success, honours a hook's own wait, gives up with
the last exception, and never retries what the filter rejects."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from runtime.retry import Backoff, Retry


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


async def test_retries_until_success() -> None:
    calls = 0
    async for attempt in Backoff(attempts=5, initial=0.001, maximum=0.01, jitter=0).retries(Flaky):
        with attempt:
            calls += 1
            if calls < 3:
                raise Flaky
    assert calls == 3


async def test_gives_up_after_attempts_with_the_last_exception() -> None:
    calls = 0

    async def always_failing() -> None:
        nonlocal calls
        async for attempt in Backoff(attempts=3, initial=0.001, maximum=0.01, jitter=0).retries(Flaky):
            with attempt:
                calls += 1
                raise Flaky(str(calls))

    with pytest.raises(Flaky, match="3"):
        await always_failing()
    assert calls == 3


async def test_a_rejected_exception_is_not_retried() -> None:
    calls = 0

    async def fatal() -> None:
        nonlocal calls
        async for attempt in Backoff(attempts=5, initial=0.001).retries(Flaky):
            with attempt:
                calls += 1
                raise Fatal

    with pytest.raises(Fatal):
        await fatal()
    assert calls == 1


async def test_a_hook_can_set_the_wait_like_retry_after() -> None:
    waits: list[float] = []
    last = time.monotonic()

    def hook(exc: Exception) -> bool | float:
        return 0.2 if isinstance(exc, Flaky) else False

    async for attempt in Backoff(attempts=2, initial=5.0, maximum=5.0, jitter=0).retries(hook):
        with attempt:
            now = time.monotonic()
            waits.append(now - last)
            last = now
            if len(waits) == 1:
                raise Flaky
    # the exponential backoff would wait 5 s; the hook's 0.2 s won
    assert 0.15 <= waits[1] < 2.0


async def test_each_retry_is_reported_to_its_own_loop_with_cause_and_wait() -> None:
    seen: list[Retry] = []
    calls = 0
    async for attempt in Backoff(attempts=3, initial=0.01, maximum=0.05, jitter=0).retries(
        Flaky, report=seen.append
    ):
        with attempt:
            calls += 1
            if calls < 3:
                raise Flaky(f"failure {calls}")
    assert [(r.number, str(r.cause)) for r in seen] == [(1, "failure 1"), (2, "failure 2")]
    assert [round(r.wait, 3) for r in seen] == [0.01, 0.02]  # exponential, no jitter asked for


async def test_by_default_a_retry_is_a_warning_log_line(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    with caplog.at_level(logging.WARNING):
        async for attempt in Backoff(attempts=2, initial=0.001, jitter=0).retries(Flaky):
            with attempt:
                calls += 1
                if calls == 1:
                    raise Flaky("boom")
    assert calls == 2
    assert any("retry scheduled" in r.getMessage() and "boom" in r.getMessage() for r in caplog.records)


async def test_a_timeout_ends_the_retries_with_the_last_exception() -> None:
    calls = 0

    async def outage() -> None:
        nonlocal calls
        async for attempt in Backoff(attempts=None, initial=0.01, maximum=0.02, timeout=0.2).retries(Flaky):
            with attempt:
                calls += 1
                raise Flaky(str(calls))

    with pytest.raises(Flaky):
        await asyncio.wait_for(outage(), 30)
    assert calls >= 2
