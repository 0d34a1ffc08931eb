"""The LLM simulator in the test's event loop, and an engine pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from devtools.llmsim import SimConfig, Simulator, start_simulator
from runtime.settings import load_settings
from services.synthesizer.engine import Engine
from services.synthesizer.settings import SynthesizerSettings


class Sim:
    def __init__(self, sim: Simulator, runner: web.AppRunner, url: str) -> None:
        self.sim, self.runner, self.url = sim, runner, url


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    simulator, runner, url = await start_simulator(SimConfig(latency=0.05))
    try:
        yield Sim(simulator, runner, url)
    finally:
        await runner.cleanup()


def settings_for(url: str, redis_url: str = "", **overrides: object) -> SynthesizerSettings:
    """The synthesizer's settings pointed at the simulator (and at Redis when given)."""
    return load_settings(
        SynthesizerSettings,
        llm_base_url=url,
        llm_model="sim-1",
        redis_url=redis_url,
        log_format="console",
        **overrides,
    )


def engine_for(url: str, redis_url: str = "", **overrides: object) -> Engine:
    """An engine with ``settings_for``'s settings; use it as ``async with engine_for(...) as engine:``."""
    return Engine(settings_for(url, redis_url, **overrides))
