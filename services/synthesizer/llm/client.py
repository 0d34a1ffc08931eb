"""OpenAI-compatible chat completions over one pooled HTTP client (Ollama, vLLM, llama.cpp, OpenAI)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from services.synthesizer.llm.errors import (
    BadResponseError,
    CallTimeoutError,
    LLMError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    UnreachableError,
)


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    max_tokens: int
    temperature: float


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    #: True when the backend sent no usage and the counts are estimated from the text
    estimated: bool
    latency_s: float


def estimate_tokens(text: str) -> int:
    """About four characters per token for English text (what OpenAI documents as a rule of thumb)."""
    return max(1, (len(text) + 3) // 4)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_message(response: httpx.Response) -> str:
    """OpenAI sends {"error": {"message": ...}}, Ollama {"error": "..."}; anything else as text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:200]
    if error:
        return str(error)[:200]
    return response.text[:200]


def parse_completion(body: Any, request: ChatRequest, latency: float) -> Completion:
    """The text and usage of a chat completion body; missing usage is estimated."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise BadResponseError(f"not a chat completion: missing {exc}") from None
    if not isinstance(text, str) or not text.strip():
        raise BadResponseError("the completion has no text")
    usage = body.get("usage") if isinstance(body, dict) else None
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        return Completion(
            text, int(usage.get("prompt_tokens") or 0), int(usage["completion_tokens"]), False, latency
        )
    prompt = sum(estimate_tokens(content) for _, content in request.messages)
    return Completion(text, prompt, estimate_tokens(text), True, latency)


class OpenAIClient:
    """One pooled httpx client per backend with connect/read timeouts and a total deadline per call."""

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        total_timeout: float = 180.0,
        max_connections: int = 256,
    ) -> None:
        headers = {"User-Agent": "storywire-synthesizer/0.1"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self.total_timeout = total_timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(self, request: ChatRequest) -> Completion:
        payload = {
            "model": request.model,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": False,
        }
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.total_timeout):
                response = await self._http.post("/chat/completions", json=payload)
        except TimeoutError:
            raise CallTimeoutError(f"no answer within the total timeout of {self.total_timeout}s") from None
        except httpx.TimeoutException as exc:
            raise CallTimeoutError(f"{type(exc).__name__}: {exc}") from None
        except httpx.TransportError as exc:
            raise UnreachableError(f"{type(exc).__name__}: {exc}") from None
        latency = time.perf_counter() - started
        status = response.status_code
        if status == 429:
            raise RateLimitedError(_error_message(response), _retry_after(response), status)
        if status >= 500:
            raise ServerError(f"HTTP {status}: {_error_message(response)}", _retry_after(response), status)
        if status >= 400:
            raise RequestRejectedError(f"HTTP {status}: {_error_message(response)}", status=status)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponseError(f"the body is not JSON: {response.text[:80]!r}") from None
        return parse_completion(body, request, latency)


__all__ = ["ChatRequest", "Completion", "LLMError", "OpenAIClient", "estimate_tokens"]
