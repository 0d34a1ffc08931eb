"""The engine as an async context manager: its block's end closes its clients, on error too."""

from __future__ import annotations

import aiohttp
import pytest

from services.synthesizer.engine import Engine
from services.synthesizer.stories.writer import GenParams
from tests.synthesizer.conftest import Sim, engine_for
from tests.synthesizer.test_writer import cluster


async def test_the_end_of_the_block_closes_the_llm_client_even_on_error(sim: Sim) -> None:
    opened: list[tuple[Engine, aiohttp.ClientSession]] = []

    async def failing_block() -> None:
        async with engine_for(sim.url) as engine:
            result = await engine.writer.write(cluster(1), GenParams("sim-1", 200, 0.0))
            assert not result.fallback, result.fallback_reason
            assert engine.client is not None
            session = engine.client._session  # opened by the call above
            assert session is not None
            assert not session.closed
            opened.append((engine, session))
            raise RuntimeError("the block failed")

    with pytest.raises(RuntimeError, match="the block failed"):
        await failing_block()
    [(engine, session)] = opened
    assert session.closed
    assert engine.client is not None
    assert engine.client._session is None
