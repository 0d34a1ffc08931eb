"""The limiter's cold start and burst start, on a fake clock (what a call measures is set by the test):
one call alone, then two together, then open up or stay at 1; and a burst never starts with a probe of
a level the concurrency rule cut."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from services.synthesizer.llm import limiter as limiter_module
from services.synthesizer.llm.limiter import AdaptiveLimiter, Permit

SOLO_SECONDS = 0.1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(limiter_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def served(clock: Clock, permits: list[Permit], slowdown: float) -> None:
    """The permits' calls, started together, each answered after ``slowdown`` times a solo call."""
    clock.now += SOLO_SECONDS * slowdown
    for permit in permits:
        permit.success(SOLO_SECONDS * slowdown, 500, 50)


async def probe_pair(limiter: AdaptiveLimiter, clock: Clock, slowdown: float) -> None:
    assert limiter.limit == 1
    served(clock, [await limiter.acquire()], 1.0)  # alone: the backend's best
    assert limiter.limit == 2
    assert limiter.probing
    served(clock, [await limiter.acquire(), await limiter.acquire()], slowdown)
    assert not limiter.probing


async def test_a_cpu_bound_backend_keeps_the_limit_at_one(clock: Clock) -> None:
    limiter = AdaptiveLimiter()  # the shipped defaults
    await probe_pair(limiter, clock, slowdown=2.0)  # two together: each twice as slow
    assert limiter.limit == 1


@pytest.mark.parametrize("slowdown", [1.0, 1.03, 1.3])
async def test_a_backend_that_serves_two_in_parallel_opens_to_the_initial_limit(
    clock: Clock, slowdown: float
) -> None:
    limiter = AdaptiveLimiter()
    await probe_pair(limiter, clock, slowdown)
    assert limiter.limit == 64
    permits = [await asyncio.wait_for(limiter.acquire(), 1) for _ in range(64)]
    assert limiter.in_flight == 64
    served(clock, permits, 1.0)


async def test_a_static_limit_or_a_minimum_above_one_does_not_probe(clock: Clock) -> None:
    assert AdaptiveLimiter(8, 8, 8, static=True).limit == 8
    assert AdaptiveLimiter(64, 4, 256).limit == 64
    assert AdaptiveLimiter(64, 1, 256, probe=False).limit == 64


async def test_a_burst_after_an_idle_spell_starts_below_a_level_that_was_cut(clock: Clock) -> None:
    """The additive increase climbs back to a level the concurrency rule cut while the queue drains; the
    next burst starts one below it, so its first answer is not held back by a probe (on a CPU-bound
    backend two calls each take twice as long). The probe comes later, within the burst."""
    limiter = AdaptiveLimiter()
    await probe_pair(limiter, clock, slowdown=2.0)
    assert limiter.limit == 1
    while limiter.limit < 2:  # calls wait behind one in service: the limit grows, slowly, towards 2
        permit = await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        served(clock, [permit], 1.0)
        served(clock, [await asyncio.wait_for(waiter, 1)], 1.0)
    assert limiter.in_flight == 0
    clock.now += 60  # idle
    first = await limiter.acquire()
    assert limiter.limit == 1
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert not second.done(), "the burst's first call runs alone"
    served(clock, [first], 1.0)
    served(clock, [await asyncio.wait_for(second, 1)], 1.0)


async def alone_then_pair(limiter: AdaptiveLimiter, clock: Clock) -> tuple[Permit, Permit]:
    """The probe's first call, answered alone, then the two calls that run together (not yet answered)."""
    served(clock, [await limiter.acquire()], 1.0)
    assert limiter.limit == 2
    return await limiter.acquire(), await limiter.acquire()


@pytest.mark.parametrize("burst", [0, 8], ids=["two-calls", "burst"])
async def test_a_backend_serving_one_call_at_a_time_keeps_the_limit_at_one(clock: Clock, burst: int) -> None:
    """llama-server with one slot, Ollama with NUM_PARALLEL=1: the first of the pair is answered at solo
    speed while the second waits behind it, so the second takes twice as long. The probe is judged once
    both have answered, by the slower, and never lets more than two calls into service."""
    limiter = AdaptiveLimiter()
    first, second = await alone_then_pair(limiter, clock)
    queued = [asyncio.create_task(limiter.acquire()) for _ in range(burst)]
    await asyncio.sleep(0)
    clock.now += SOLO_SECONDS
    first.success(SOLO_SECONDS, 500, 50)
    assert (limiter.probing, limiter.limit) == (True, 2), "one answer of the pair does not settle the probe"
    assert limiter.in_flight <= 2
    clock.now += SOLO_SECONDS
    second.success(2 * SOLO_SECONDS, 500, 50)
    assert not limiter.probing
    assert limiter.limit == 1
    assert [limit for _, limit in limiter.history] == [1, 2, 1]
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)


@pytest.mark.parametrize("congested_first", [True, False], ids=["timeout-then-ok", "ok-then-timeout"])
async def test_congestion_during_the_pair_ends_the_probe_without_opening(
    clock: Clock, congested_first: bool
) -> None:
    """A 5xx or a timeout of one of the pair: the limit is cut and never opens to the initial limit,
    whatever the other call's answer; the additive increase takes over from the cut."""
    limiter = AdaptiveLimiter()
    first, second = await alone_then_pair(limiter, clock)
    clock.now += SOLO_SECONDS
    if congested_first:
        first.congestion()
        second.success(SOLO_SECONDS, 500, 50)
    else:
        second.success(SOLO_SECONDS, 500, 50)
        first.congestion()
    assert not limiter.probing
    assert limiter.limit == 1
    assert max(limit for _, limit in limiter.history) == 2
    # calls queue behind one in service: the limit grows by the additive increase, not to 64
    for _ in range(4):
        permit = await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        served(clock, [permit], 1.0)
        served(clock, [await asyncio.wait_for(waiter, 1)], 1.0)
    assert limiter.limit <= 3


async def test_a_429_during_the_pair_ends_the_probe_at_what_the_backend_serves(clock: Clock) -> None:
    limiter = AdaptiveLimiter()
    first, second = await alone_then_pair(limiter, clock)
    first.over_capacity()
    clock.now += SOLO_SECONDS
    second.success(SOLO_SECONDS, 500, 50)
    assert not limiter.probing
    assert limiter.limit == 1
    assert limiter.in_flight == 0


async def test_a_cancelled_call_of_the_pair_leaves_the_probe_at_two(clock: Clock) -> None:
    """One of the pair cancelled (what the caller's ``finally`` does): the other ran alone, which says
    nothing about two together, so the probe goes on at 2, with no permit leaked. A caller cancelled
    while it waits for a permit is no demand; the next pair, CPU-bound, keeps the limit at 1."""
    limiter = AdaptiveLimiter()
    first, second = await alone_then_pair(limiter, clock)
    first.ignore()
    clock.now += SOLO_SECONDS
    second.success(SOLO_SECONDS, 500, 50)
    assert (limiter.probing, limiter.limit, limiter.in_flight) == (True, 2, 0)
    pair = [await limiter.acquire(), await limiter.acquire()]
    cancelled = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    served(clock, pair, 2.0)
    assert not limiter.probing
    assert limiter.limit == 1
    assert limiter.in_flight == 0


async def test_a_5xx_on_a_lone_call_at_the_pair_limit_leaves_the_probe_running(clock: Clock) -> None:
    """Sparse work: after the first call the limit is 2, but the next call runs alone and meets a 5xx or a
    timeout. Nothing was learnt about two together, so the probe goes on (the limit is cut), and the next
    pair, served in parallel, opens the limit to the initial one instead of leaving the additive increase
    to climb from 1."""
    limiter = AdaptiveLimiter()
    served(clock, [await limiter.acquire()], 1.0)
    assert (limiter.probing, limiter.limit) == (True, 2)
    lone = await limiter.acquire()
    clock.now += SOLO_SECONDS
    lone.congestion()
    assert (limiter.probing, limiter.limit, limiter.in_flight) == (True, 1, 0)  # cut, still probing
    served(clock, [await limiter.acquire()], 1.0)  # alone again
    assert limiter.limit == 2
    served(clock, [await limiter.acquire(), await limiter.acquire()], 1.0)
    assert not limiter.probing
    assert limiter.limit == 64
