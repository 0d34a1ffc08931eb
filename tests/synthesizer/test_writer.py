"""The story writer: cache tiers, coalescing, retries under faults, grounding, adaptive concurrency."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time

import pytest

from devtools.stack import Stack, StackInfo
from services.synthesizer.llm.cache import MemoryTier
from services.synthesizer.stories.prompt import SourceArticle
from services.synthesizer.stories.writer import GenParams
from tests.conftest import make_state_dir
from tests.synthesizer.conftest import Sim, engine_for

PARAMS = GenParams("sim-1", 200, 0.0)


LEADS = (
    "The harbour bridge {n} reopened on Tuesday after 14 weeks of repairs.",
    "Drivers crossed the repaired bridge again from 6am.",
    "Engineers replaced {c} cables on the harbour crossing.",
)


def cluster(n: int, size: int = 3) -> list[SourceArticle]:
    """``size`` articles about one event, each with its own lead (a story copied from one article's lead
    is extractive, so the simulator's answer must combine several)."""
    return [
        SourceArticle(
            id=f"a{n}-{i}",
            title=f"Harbour bridge {n} reopens after repairs",
            text=LEADS[i % len(LEADS)].format(n=n, c=120 + n) + " Traffic resumed at 6am.",
            content_hash=f"h{n}-{i}",
        )
        for i in range(size)
    ]


def test_memory_tier_is_bounded_by_bytes() -> None:
    tier = MemoryTier(max_bytes=100)
    for i in range(10):
        tier.put(f"k{i}", b"x" * 30)
    assert tier.stats.bytes <= 100
    assert tier.stats.entries == 3
    assert tier.stats.evictions == 7
    assert tier.get("k9") == b"x" * 30
    assert tier.get("k0") is None


async def test_second_identical_request_is_a_cache_hit_with_no_llm_call(sim: Sim, stack: StackInfo) -> None:
    async with engine_for(sim.url, stack.redis_url) as engine:
        first = await engine.writer.write(cluster(1), PARAMS)
        assert (first.cache_tier, first.llm_calls, first.fallback) == ("miss", 1, False)
        calls = sim.sim.stats.calls
        second = await engine.writer.write(cluster(1), PARAMS)
        assert second.cache_tier == "memory"
        assert sim.sim.stats.calls == calls
        assert second.saved_completion_tokens == first.completion_tokens
    # a fresh process (empty memory tier) gets it from Redis
    async with engine_for(sim.url, stack.redis_url) as other:
        third = await other.writer.write(cluster(1), PARAMS)
        assert third.cache_tier == "redis"
        assert sim.sim.stats.calls == calls
        assert other.cache.redis.stats.hits == 1
        assert other.cache.redis.stats.bytes == 0  # nothing written, only read


async def test_twenty_identical_concurrent_requests_make_one_call(sim: Sim) -> None:
    sim.sim.reset(latency=0.3)
    async with engine_for(sim.url) as engine:
        results = await asyncio.gather(*(engine.writer.write(cluster(7), PARAMS) for _ in range(20)))
    assert sim.sim.stats.calls == 1
    assert sum(r.llm_calls for r in results) == 1
    assert sum(1 for r in results if r.coalesced) == 19
    assert engine.writer.coalescer.coalesced == 19
    assert len({(r.title, r.summary) for r in results}) == 1


async def test_faults_every_cluster_gets_a_story(sim: Sim) -> None:
    sim.sim.reset(latency=0.02, rate_429=0.07, rate_500=0.07, rate_timeout=0.06, hang_seconds=3, seed=11)
    async with engine_for(sim.url, llm_total_timeout_seconds=0.5, llm_max_attempts=4) as engine:
        results = await asyncio.gather(*(engine.writer.write(cluster(n), PARAMS) for n in range(40)))
    assert len(results) == 40
    assert all(r.title and r.summary for r in results)
    retried = [r for r in results if r.attempts > 1 and not r.fallback]
    fallbacks = [r for r in results if r.fallback]
    assert retried, "some calls should have needed a retry at a 20% fault rate"
    assert all(r.model == "extractive" and r.fallback_reason.startswith("LLM failed") for r in fallbacks)
    assert sum(sim.sim.stats.faults.values()) > 0
    print(f"\nfaults injected: {sim.sim.stats.faults}; retried: {len(retried)}; fallbacks: {len(fallbacks)}")


async def test_invented_facts_are_rejected_then_fall_back(sim: Sim) -> None:
    sim.sim.reset(latency=0.01, invent=True)
    async with engine_for(sim.url) as engine:
        result = await engine.writer.write(cluster(3), PARAMS)
    assert result.fallback is True
    assert result.grounding_rejections == 2  # the first answer and the stricter retry
    assert result.llm_calls == 2
    assert "names not in the articles: Zorblax" in result.fallback_reason
    assert "9999" in result.fallback_reason
    assert "Zorblax" not in result.summary


async def test_adaptive_limit_converges_near_the_slot_count(sim: Sim) -> None:
    sim.sim.reset(slots=4, queue=0, latency=0.1)
    async with engine_for(sim.url, llm_concurrency_initial=16) as engine:
        results = await asyncio.gather(*(engine.writer.write(cluster(n, 2), PARAMS) for n in range(120)))
    history = engine.limiter.history
    start = history[0][0]
    print("\nlimit over time (s, limit):", [(round(t - start, 2), lim) for t, lim in history])
    assert not any(r.fallback for r in results)
    # time-weighted mean of the limit over the second half of the run
    end = history[-1][0] + 0.1
    half = start + (end - start) / 2
    points = [(max(t, half), lim) for t, lim in history]  # segments before the half start at it
    weighted = 0.0
    for (t0, lim), (t1, _) in zip(points, [*points[1:], (end, 0)], strict=True):
        weighted += lim * max(0.0, t1 - t0)
    mean = weighted / (end - half)
    print(f"time-weighted mean limit over the second half: {mean:.2f} (slots: 4)")
    assert 2 <= mean <= 7, "after the first overloads the limit should hover near the 4 slots"


async def test_static_limit_above_capacity_waits_for_a_free_slot(sim: Sim) -> None:
    """A static limit cannot drop after a 429: a call turned away waits for another call to complete
    instead of asking again at once (the backend would otherwise be flooded with retries)."""
    sim.sim.reset(slots=4, queue=0, latency=0.1)
    async with engine_for(sim.url, llm_max_workers=32) as engine:
        results = await asyncio.gather(*(engine.writer.write(cluster(n, 2), PARAMS) for n in range(40)))
    stats = sim.sim.stats
    print(f"\nstatic 32 against 4 slots: {stats.completed} completed, {stats.rejected_429} answered 429")
    assert not any(r.fallback for r in results)
    assert stats.completed == 40
    assert engine.limiter.limit == 32
    # one burst of 28 rejections at the start, then about one retry per completion
    assert stats.rejected_429 <= 28 + 40


async def test_redis_killed_mid_job_the_job_completes(sim: Sim, caplog: pytest.LogCaptureFixture) -> None:
    state = make_state_dir()
    stack = Stack(state)
    info = stack.up()
    try:
        async with engine_for(sim.url, info.redis_url) as engine:
            first = await asyncio.gather(*(engine.writer.write(cluster(n), PARAMS) for n in range(5)))
            assert engine.cache.redis.stats.writes == 5
            stack.redis.stop()
            with caplog.at_level(logging.WARNING):
                later = await asyncio.gather(*(engine.writer.write(cluster(n), PARAMS) for n in range(5, 15)))
                again = await engine.writer.write(cluster(2), PARAMS)
            assert all(not r.fallback for r in first + later)
            assert again.cache_tier == "memory"
            assert engine.cache.redis.stats.available is False
            warnings = [r for r in caplog.records if "Redis cache unreachable" in r.getMessage()]
            assert len(warnings) == 1
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


async def test_the_limit_recovers_after_a_fault_burst_even_when_answers_are_rejected(sim: Sim) -> None:
    """Answers that fail parsing or grounding still come from a backend that served them: they are
    capacity samples, so after a burst of 5xx has cut the limit to 1 it climbs back to the backend's 4
    slots."""
    # 0.2 s per call: event-loop lag on a busy machine stays well below the 2x latency tolerance
    sim.sim.reset(slots=4, queue=0, latency=0.2, rate_500=1.0)
    async with engine_for(sim.url, llm_concurrency_initial=8, llm_max_attempts=2) as engine:
        for burst in range(20):  # 500s until the limit is at its minimum (each round trip cuts it by 0.7)
            await asyncio.gather(
                *(engine.writer.write(cluster(n, 2), PARAMS) for n in range(burst * 10, burst * 10 + 10))
            )
            if engine.limiter.limit == 1:
                break
        after_faults = engine.limiter.limit
        assert after_faults == 1, f"the fault burst should have cut the limit to 1 (it is {after_faults})"
        mark = time.monotonic()
        # every answer now fails: half are not completions at all, the rest invent facts (grounding)
        sim.sim.reset(rate_500=0.0, rate_garbage=0.5, invent=True, seed=5)
        rejected = await asyncio.gather(
            *(engine.writer.write(cluster(n, 2), PARAMS) for n in range(300, 360))
        )
        assert all(r.fallback for r in rejected)
        recovered = max(limit for t, limit in engine.limiter.history if t >= mark)
        assert recovered >= 4, f"the limit should climb back to the 4 slots, reached {recovered}"
        # and a clean run works at the backend's capacity
        sim.sim.reset(rate_garbage=0.0, invent=False)
        mark = time.monotonic()
        clean = await asyncio.gather(*(engine.writer.write(cluster(n, 2), PARAMS) for n in range(400, 440)))
        assert not any(r.fallback for r in clean), [r.fallback_reason for r in clean if r.fallback][:3]
        assert max([engine.limiter.limit] + [limit for t, limit in engine.limiter.history if t >= mark]) >= 4
        assert engine.limiter.in_flight == 0
    print(f"\nlimit: after faults {after_faults}, while answers were rejected up to {recovered}, "
          f"after the clean run {engine.limiter.limit}")  # fmt: skip
