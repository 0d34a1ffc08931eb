"""The fetcher's limits at their defaults (the other fetcher tests shorten them to stay quick): the total
timeout per URL ends a server that trickles bytes, the body cap refuses a larger body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from storywire.v1 import common_pb2, fetcher_pb2

from runtime.settings import load_settings
from runtime.stubs import FetcherStub as Fetcher
from services.fetcher.settings import FetcherSettings
from tests.fetcher.hostile import Hostile
from tests.fetcher.test_fetch import hostile, serving

__all__ = ["hostile"]  # fixture
pytestmark = pytest.mark.integration
DEFAULTS = FetcherSettings.model_fields


@pytest.fixture
async def default_fetcher() -> AsyncIterator[Fetcher]:
    """Only the port and the loopback allow-list set."""
    settings = load_settings(FetcherSettings, fetcher_port=0, fetch_allow_networks="127.0.0.1/32")
    async with serving(settings) as stub:
        yield stub


async def fetch_error(stub: Fetcher, url: str) -> tuple[fetcher_pb2.FetchError, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    responses = [r async for r in stub.Fetch(fetcher_pb2.FetchRequest(urls=[url]))]
    errors = [r.error for r in responses if r.WhichOneof("item") == "error"]
    assert len(errors) == 1, responses
    return errors[0], loop.time() - started


async def test_the_default_total_timeout_ends_a_slowloris(default_fetcher: Fetcher, hostile: Hostile) -> None:
    error, took = await fetch_error(default_fetcher, f"{hostile.base}/slow")
    assert error.code == common_pb2.FETCH_ERROR_CODE_TIMEOUT
    default = DEFAULTS["fetch_timeout_seconds"].default
    assert default <= took < default + 15  # a byte every 0.5 s never trips the read timeout: the total does


async def test_the_default_body_cap_refuses_a_larger_body(default_fetcher: Fetcher, hostile: Hostile) -> None:
    error, _ = await fetch_error(default_fetcher, f"{hostile.base}/endless")
    assert error.code == common_pb2.FETCH_ERROR_CODE_TOO_LARGE
    assert str(DEFAULTS["fetch_max_body_bytes"].default) in error.detail
