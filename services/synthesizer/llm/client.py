"""OpenAI-compatible chat completions over one pooled HTTP client (Ollama, vLLM, llama.cpp, OpenAI)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

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
    #: OpenAI-style ``response_format`` (e.g. ``{"type": "json_schema", ...}``), sent as given when set
    response_format: Mapping[str, Any] | None = None
    #: a GBNF grammar the answer must follow (llama.cpp's ``llama-server``), sent as ``grammar`` when set
    grammar: str | None = None
    #: llama.cpp's repetition penalty (``repeat_penalty``), sent when set
    repeat_penalty: float | None = None


@dataclass(frozen=True)
class BackendInfo:
    """What a backend says about itself, where it can tell (``llama-server``: ``/props`` and the
    ``meta`` of ``/v1/models``); ``None`` where it cannot."""

    kind: str = "unknown"  # "llama-server" or "unknown"
    #: context window of one slot (one request), in tokens
    context_tokens: int | None = None
    #: parameters of the model
    parameters: int | None = None


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


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _error_message(raw: bytes) -> str:
    """OpenAI sends {"error": {"message": ...}}, Ollama {"error": "..."}; anything else as text."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _text(raw)[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:200]
    if error:
        return str(error)[:200]
    return _text(raw)[:200]


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


def proxy_for(url: str) -> str | None:
    """The proxy that HTTP_PROXY / HTTPS_PROXY name for ``url`` unless NO_PROXY exempts its host, read
    once. (aiohttp's trust_env does the same but also re-reads ~/.netrc on every request: 11% of the
    synthesizer's CPU on a 5,000-article job.)"""
    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme) or None


def request_payload(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a chat completion request (also what the bench's peers send, byte for byte)."""
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": role, "content": content} for role, content in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": False,
    }
    if request.response_format is not None:
        payload["response_format"] = dict(request.response_format)
    if request.grammar is not None:
        payload["grammar"] = request.grammar
    if request.repeat_penalty is not None:
        payload["repeat_penalty"] = request.repeat_penalty
    return payload


class OpenAIClient:
    """One pooled aiohttp session per backend with connect/read timeouts and a total deadline per call.

    aiohttp rather than httpx: on 2 cores against the simulator (``python -m bench httpclient``), httpx
    0.28 spent 2.16 ms of CPU per call at 16 calls in flight and 9.89 ms at 64, growing with the calls
    in flight; aiohttp 0.10 and 0.12 ms. With dozens of calls in flight that overhead was most of the
    gap to the LLM-bound ideal (docs/performance.md)."""

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
        self._headers = {"User-Agent": "storywire-synthesizer/0.1"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self.total_timeout = total_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._proxy = proxy_for(self.base_url)

    def _http(self) -> aiohttp.ClientSession:
        # created on first use, inside the running event loop that will use it
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                raise_for_status=False,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def probe(self, timeout: float = 5.0) -> BackendInfo:
        """Ask the backend what it is: ``llama-server`` answers ``GET /props`` (its context size per slot)
        and lists ``meta.n_params`` in ``/v1/models``. Anything else, or no answer, is ``unknown``."""
        root = self.base_url.removesuffix("/v1")
        props = await self._get_json(root + "/props", timeout)
        if not isinstance(props, dict) or "default_generation_settings" not in props:
            return BackendInfo()
        settings = props.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        n_ctx = n_ctx if isinstance(n_ctx, int) else props.get("n_ctx")
        models = await self._get_json(self.base_url + "/models", timeout)
        n_params = None
        if isinstance(models, dict) and isinstance(models.get("data"), list) and models["data"]:
            first = models["data"][0]
            meta = first.get("meta") if isinstance(first, dict) else None
            value = meta.get("n_params") if isinstance(meta, dict) else None
            n_params = value if isinstance(value, int) else None
        return BackendInfo("llama-server", n_ctx if isinstance(n_ctx, int) else None, n_params)

    async def _get_json(self, url: str, timeout: float) -> Any:
        try:
            async with (
                asyncio.timeout(timeout),
                self._http().get(url, proxy=self._proxy) as response,
            ):
                if response.status != 200:
                    return None
                return json.loads(await response.read())
        except (TimeoutError, aiohttp.ClientError, ValueError, UnicodeDecodeError):
            return None

    async def complete(self, request: ChatRequest) -> Completion:
        payload = request_payload(request)
        started = time.perf_counter()
        try:
            async with (
                asyncio.timeout(self.total_timeout),
                self._http().post(
                    self.base_url + "/chat/completions", json=payload, proxy=self._proxy
                ) as response,
            ):
                status = response.status
                retry_after = _retry_after(response.headers.get("retry-after"))
                raw = await response.read()
        except aiohttp.ServerTimeoutError as exc:  # connect or read timeout (before the total deadline)
            raise CallTimeoutError(f"{type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise CallTimeoutError(f"no answer within the total timeout of {self.total_timeout}s") from None
        except aiohttp.ClientError as exc:
            raise UnreachableError(f"{type(exc).__name__}: {exc}") from None
        latency = time.perf_counter() - started
        if status == 429:
            raise RateLimitedError(_error_message(raw), retry_after, status)
        if status >= 500:
            raise ServerError(f"HTTP {status}: {_error_message(raw)}", retry_after, status)
        if status >= 400:
            raise RequestRejectedError(f"HTTP {status}: {_error_message(raw)}", status=status)
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponseError(f"the body is not JSON: {_text(raw)[:80]!r}") from None
        return parse_completion(body, request, latency)


__all__ = ["BackendInfo", "ChatRequest", "Completion", "LLMError", "OpenAIClient", "estimate_tokens"]
