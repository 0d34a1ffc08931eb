"""The OpenAI-compatible client against the simulator speaking each backend's dialect."""

from __future__ import annotations

import pytest

from devtools.stack.proc import free_port
from services.synthesizer.llm.client import ChatRequest, OpenAIClient, proxy_for
from services.synthesizer.llm.errors import (
    BadResponseError,
    CallTimeoutError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    UnreachableError,
)
from tests.synthesizer.conftest import Sim

REQUEST = ChatRequest(
    "sim-1", (("system", "Be brief."), ("user", "Article 1: Dam opens\nThe dam opened.")), 50, 0.0
)


@pytest.mark.parametrize("dialect", ["openai", "vllm", "ollama", "llamacpp"])
async def test_each_dialect_parses_with_usage(sim: Sim, dialect: str) -> None:
    sim.sim.reset(dialect=dialect, latency=0.01)
    client = OpenAIClient(sim.url)
    try:
        completion = await client.complete(REQUEST)
    finally:
        await client.aclose()
    assert completion.text.startswith("TITLE: Dam opens")
    assert completion.estimated is False
    assert completion.completion_tokens == sim.sim.stats.completion_tokens


async def test_missing_usage_is_estimated(sim: Sim) -> None:
    sim.sim.reset(dialect="llamacpp", omit_usage=True, latency=0.01)
    client = OpenAIClient(sim.url)
    try:
        completion = await client.complete(REQUEST)
    finally:
        await client.aclose()
    assert completion.estimated is True
    assert completion.completion_tokens == (len(completion.text) + 3) // 4
    assert completion.prompt_tokens > 0


@pytest.mark.parametrize(
    ("settings", "error", "fragment"),
    [
        ({"rate_429": 1.0}, RateLimitedError, "rate limited"),
        ({"rate_500": 1.0}, ServerError, "HTTP 500: internal error"),
        ({"rate_500": 1.0, "dialect": "ollama"}, ServerError, "HTTP 500: internal error"),
        ({"rate_garbage": 1.0}, BadResponseError, "not JSON"),
    ],
)
async def test_errors_are_classified(
    sim: Sim, settings: dict[str, object], error: type, fragment: str
) -> None:
    sim.sim.reset(latency=0.01, **settings)
    client = OpenAIClient(sim.url)
    try:
        with pytest.raises(error) as info:
            await client.complete(REQUEST)
    finally:
        await client.aclose()
    assert fragment in str(info.value)
    if isinstance(info.value, RateLimitedError):
        assert info.value.retry_after == 1.0


async def test_bad_request_is_not_retryable(sim: Sim) -> None:
    client = OpenAIClient(sim.url.replace("/v1", "/v1/nope"))
    try:
        with pytest.raises(RequestRejectedError) as info:
            await client.complete(REQUEST)
    finally:
        await client.aclose()
    assert info.value.retryable is False
    assert info.value.status == 404


async def test_timeout_and_unreachable(sim: Sim) -> None:
    sim.sim.reset(rate_timeout=1.0, hang_seconds=5)
    client = OpenAIClient(sim.url, total_timeout=0.3)
    try:
        with pytest.raises(CallTimeoutError):
            await client.complete(REQUEST)
    finally:
        await client.aclose()
    dead = OpenAIClient(f"http://127.0.0.1:{free_port()}/v1", connect_timeout=0.5)
    try:
        with pytest.raises(UnreachableError):
            await dead.complete(REQUEST)
    finally:
        await dead.aclose()


def test_proxy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "internal.test")
    assert proxy_for("https://api.openai.test/v1") == "http://proxy.test:3128"
    assert proxy_for("https://internal.test/v1") is None
    assert proxy_for("http://127.0.0.1:8080/v1") is None  # no HTTP_PROXY set
