"""Health tells the truth: NOT_SERVING (with a log line saying why) while work waits for an LLM that
makes no progress, SERVING again once calls progress (a real server, the simulator hanging its calls)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.server import start_server
from services.synthesizer.service import SynthesizerService
from services.synthesizer.stories.writer import GenParams
from tests.synthesizer.conftest import Sim, settings_for
from tests.synthesizer.test_writer import cluster

pytestmark = pytest.mark.integration
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


async def statuses(address: str) -> AsyncGenerator[int]:
    """Every status the server's health Watch stream reports."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        async for reply in stub.Watch(health_pb2.HealthCheckRequest(service="")):
            yield reply.status


async def next_status(stream: AsyncIterator[int], wanted: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while await anext(stream) != wanted:
            pass


async def test_a_stuck_llm_turns_health_not_serving_until_calls_progress(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    sim.sim.reset(rate_timeout=1.0, hang_seconds=4)  # every call hangs 4 s, then gets a 504
    # the setting under test, shortened from its 120 s default (which the settings test covers)
    settings = settings_for(sim.url, llm_stall_seconds=1.0, worker_enabled=False)
    service = SynthesizerService(settings)
    handle = await start_server(service, settings, 0)
    articles = cluster(1)
    watch = statuses(handle.address)
    try:
        await next_status(watch, SERVING, 10)
        write = asyncio.create_task(service.engine.writer.write(articles, GenParams("sim-1", 64, 0.0)))
        await next_status(watch, NOT_SERVING, 10)
        assert service.engine.stalled_for() >= 1.0
        assert any("LLM stalled" in r.getMessage() for r in caplog.records)
        sim.sim.reset(rate_timeout=0.0)  # the hung call ends with a 504; the retry is answered
        await next_status(watch, SERVING, 20)
        story = await asyncio.wait_for(write, 20)
        assert not story.fallback
        assert service.engine.stalled_for() == 0.0
    finally:
        await watch.aclose()  # an open Watch stream would hold the server's shutdown for its grace period
        await handle.stop()
