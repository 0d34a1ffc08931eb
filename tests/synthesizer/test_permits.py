"""Every concurrency permit of the LLM client comes back, on every path: success, an LLM error, a
cancellation while waiting for a permit, a cancellation mid-call, a timeout (the simulator on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.synthesizer.llm.caller import ResilientCaller, RetryPolicy, Spent
from services.synthesizer.llm.client import ChatRequest, OpenAIClient
from services.synthesizer.llm.errors import CallTimeoutError, ServerError
from services.synthesizer.llm.limiter import AdaptiveLimiter
from services.synthesizer.stories.prompt import parse_answer
from tests.synthesizer.conftest import Sim
from tests.synthesizer.sessionkit import until

REQUEST = ChatRequest("sim-1", (("user", "Article 1: Bridge reopens\nThe bridge reopened."),), 64, 0.0)


@pytest.fixture
async def client(sim: Sim) -> AsyncIterator[OpenAIClient]:
    c = OpenAIClient(sim.url, total_timeout=30)
    try:
        yield c
    finally:
        await c.aclose()


def caller_for(client: OpenAIClient, limit: int = 4, attempts: int = 2) -> ResilientCaller:
    limiter = AdaptiveLimiter(limit, 1, limit, static=True)
    return ResilientCaller(client, limiter, RetryPolicy(max_attempts=attempts, base_delay=0.01))


async def test_success_returns_the_permit(client: OpenAIClient) -> None:
    caller = caller_for(client)
    answer = await caller.call(REQUEST, parse_answer, Spent())
    assert answer.value[0] == "Bridge reopens"
    assert caller.limiter.in_flight == 0


async def test_an_llm_error_returns_the_permit(sim: Sim, client: OpenAIClient) -> None:
    sim.sim.reset(rate_500=1.0)
    caller = caller_for(client)
    with pytest.raises(ServerError):
        await caller.call(REQUEST, parse_answer, Spent())
    assert sim.sim.stats.faults["500"] == 2  # both attempts answered 500
    assert caller.limiter.in_flight == 0


async def test_cancelled_while_waiting_for_a_permit(sim: Sim, client: OpenAIClient) -> None:
    sim.sim.reset(latency=3)  # long enough to cancel mid-call; the simulator waits for it at teardown
    caller = caller_for(client, limit=1)
    running = asyncio.create_task(caller.call(REQUEST, parse_answer, Spent()))
    await until(lambda: sim.sim.stats.in_service == 1, what="the first call reached the backend")
    waiting = asyncio.create_task(caller.call(REQUEST, parse_answer, Spent()))
    await until(lambda: caller.limiter.busy and len(caller.limiter._waiters) == 1)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert caller.limiter.in_flight == (0 if running.done() else 1)  # only the running call holds one
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert caller.limiter.in_flight == 0
    assert not caller.limiter.busy


async def test_cancelled_mid_call(sim: Sim, client: OpenAIClient) -> None:
    sim.sim.reset(latency=3)  # long enough to cancel mid-call; the simulator waits for it at teardown
    caller = caller_for(client)
    calls = [asyncio.create_task(caller.call(REQUEST, parse_answer, Spent())) for _ in range(3)]
    await until(lambda: sim.sim.stats.in_service == 3, what="three calls at the backend")
    assert caller.limiter.in_flight == 3
    for task in calls:
        task.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    assert caller.limiter.in_flight == 0


async def test_a_timeout_returns_the_permit(sim: Sim) -> None:
    sim.sim.reset(rate_timeout=1.0, hang_seconds=2)
    client = OpenAIClient(sim.url, total_timeout=0.3)
    caller = caller_for(client, attempts=2)
    try:
        with pytest.raises(CallTimeoutError):
            await caller.call(REQUEST, parse_answer, Spent())
    finally:
        await client.aclose()
    assert caller.limiter.in_flight == 0
