"""Writes one story for one cluster: cache, coalescing, adaptive concurrency, retries, grounding, fallback.

Order of work for a cluster: look the request up in the cache (memory, then Redis); otherwise join an
identical request already in flight, or make the call: wait for a concurrency permit, call the backend,
retry retryable failures with exponential backoff and jitter (or the server's Retry-After), parse and
check the text against the articles; a rejected text is regenerated once with a stricter prompt; a
cluster whose call fails for good gets the extractive fallback. Only accepted LLM results are cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from opentelemetry import trace

from runtime.logging import get_logger
from services.synthesizer import grounding
from services.synthesizer.fallback import EXTRACTIVE_MODEL, extractive_story
from services.synthesizer.llm.cache import TwoTierCache
from services.synthesizer.llm.client import ChatRequest, Completion, OpenAIClient
from services.synthesizer.llm.coalesce import Coalescer
from services.synthesizer.llm.errors import BadResponseError, LLMError, RateLimitedError
from services.synthesizer.llm.limiter import AdaptiveLimiter
from services.synthesizer.prompt import PROMPT_VERSION, SourceArticle, build_messages, parse_answer

log = get_logger(__name__)
tracer = trace.get_tracer("storywire.synthesizer")
#: 429s answered while other calls were in flight, retried through the limiter without using attempts
MAX_CAPACITY_RETRIES = 100


@dataclass(frozen=True)
class GenParams:
    model: str
    max_tokens: int
    temperature: float


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        if retry_after is not None:
            return float(min(retry_after, self.max_delay)) + jitter / 10
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1))) * jitter


@dataclass
class StoryResult:
    title: str
    summary: str
    model: str
    prompt_version: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cache_tier: str = "miss"  # miss | memory | redis
    fallback: bool = False
    fallback_reason: str = ""
    attempts: int = 0
    llm_calls: int = 0
    grounding_rejections: int = 0
    saved_prompt_tokens: int = 0
    saved_completion_tokens: int = 0
    coalesced: bool = False
    latency_s: float = 0.0


@dataclass
class _Generated:
    """What the cache stores: an accepted LLM story and what it cost."""

    title: str
    summary: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool
    calls: int = field(default=0, compare=False)


@dataclass
class _Spent:
    """Tokens of every completion received for one story, including answers that were then rejected."""

    prompt: int = 0
    completion: int = 0
    estimated: bool = False

    def add(self, c: Completion) -> None:
        self.prompt += c.prompt_tokens
        self.completion += c.completion_tokens
        self.estimated = self.estimated or c.estimated


class StoryWriter:
    def __init__(
        self,
        client: OpenAIClient | None,
        cache: TwoTierCache,
        limiter: AdaptiveLimiter,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.coalescer: Coalescer[tuple[_Generated | None, StoryResult]] = Coalescer()

    @staticmethod
    def cache_key(articles: Sequence[SourceArticle], params: GenParams) -> str:
        material = json.dumps(
            [params.model, PROMPT_VERSION, sorted(a.content_hash for a in articles), params.max_tokens,
             params.temperature],
            separators=(",", ":"),
        )  # fmt: skip
        return hashlib.sha256(material.encode()).hexdigest()

    async def write(self, articles: Sequence[SourceArticle], params: GenParams) -> StoryResult:
        started = time.perf_counter()
        key = self.cache_key(articles, params)
        cached = await self.cache.get(key)
        if cached is not None:
            value, tier = cached
            gen = _Generated(**json.loads(value))
            result = StoryResult(
                gen.title, gen.summary, gen.model, PROMPT_VERSION, cache_tier=tier,
                saved_prompt_tokens=gen.prompt_tokens, saved_completion_tokens=gen.completion_tokens,
            )  # fmt: skip
        else:
            (_, shared), joined = await self.coalescer.run(key, lambda: self._generate(key, articles, params))
            result = StoryResult(**asdict(shared))
            if joined:  # another caller paid for it; this one cost nothing
                result.coalesced = True
                result.saved_prompt_tokens = result.prompt_tokens
                result.saved_completion_tokens = result.completion_tokens
                result.prompt_tokens = result.completion_tokens = result.llm_calls = result.attempts = 0
                result.grounding_rejections = 0
        result.latency_s = time.perf_counter() - started
        return result

    async def _generate(
        self, key: str, articles: Sequence[SourceArticle], params: GenParams
    ) -> tuple[_Generated | None, StoryResult]:
        calls = attempts = rejections = 0
        spent = _Spent()  # every completion received counts, parsed or not
        reason = "no LLM backend configured (STORYWIRE_LLM_BASE_URL is empty)"
        for strict in (False, True):
            if self.client is None:
                break
            request = ChatRequest(
                params.model, build_messages(articles, strict), params.max_tokens, params.temperature
            )
            try:
                _, tries, answer = await self._call_with_retries(request, spent)
            except LLMError as exc:
                attempts += exc.attempts
                calls += exc.attempts
                reason = f"LLM failed: {type(exc).__name__}: {exc}"
                break
            attempts += tries
            calls += tries
            prompt_tokens, completion_tokens, estimated = spent.prompt, spent.completion, spent.estimated
            title, summary = answer
            problems = grounding.check(title, summary, articles)
            if not problems:
                gen = _Generated(title, summary, params.model, prompt_tokens, completion_tokens, estimated)
                await self.cache.put(key, json.dumps(asdict(gen)).encode())
                result = StoryResult(
                    title, summary, params.model, PROMPT_VERSION, prompt_tokens, completion_tokens, estimated,
                    attempts=attempts, llm_calls=calls, grounding_rejections=rejections,
                )  # fmt: skip
                return gen, result
            rejections += 1
            reason = "grounding check failed: " + "; ".join(problems)
            log.info("story rejected by the grounding check", problems=problems, strict=strict)
        with tracer.start_as_current_span("story.fallback") as span:
            span.set_attribute("storywire.fallback.reason", reason[:200])
            title, summary = extractive_story(articles)
        result = StoryResult(
            title, summary, EXTRACTIVE_MODEL, PROMPT_VERSION, spent.prompt, spent.completion, spent.estimated,
            fallback=True, fallback_reason=reason, attempts=attempts, llm_calls=calls,
            grounding_rejections=rejections,
        )  # fmt: skip
        return None, result

    async def _call_with_retries(
        self, request: ChatRequest, spent: _Spent
    ) -> tuple[Completion, int, tuple[str, str]]:
        """Attempts until success or a permanent failure. A 429 while other calls are in flight means "we
        sent more than the backend serves at once": the limit drops to what is in flight and the call waits
        for a permit (freed as calls complete, i.e. at the backend's real pace) rather than sleeping
        Retry-After (whole seconds, often many calls long); with a static limit it waits for the next
        call to complete instead. Such capacity retries do not use up attempts.
        A 429 with nothing else in flight is a real rate limit: Retry-After is honoured."""
        assert self.client is not None
        attempt = capacity_retries = 0
        while True:
            attempt += 1
            permit = await self.limiter.acquire()
            with tracer.start_as_current_span("llm.call") as span:
                span.set_attribute("storywire.llm.attempt", attempt + capacity_retries)
                span.set_attribute("storywire.llm.concurrency_limit", permit.limit_at_start)
                span.set_attribute("storywire.llm.model", request.model)
                span.set_attribute("storywire.cache.tier", "miss")
                try:
                    completion = await self.client.complete(request)
                    spent.add(completion)
                    answer = parse_answer(completion.text)
                    if answer is None:
                        raise BadResponseError(
                            f"answer not in TITLE/SUMMARY format: {completion.text[:60]!r}"
                        )
                except LLMError as exc:
                    span.set_attribute("storywire.llm.error", type(exc).__name__)
                    over_capacity = isinstance(exc, RateLimitedError) and self.limiter.in_flight > 1
                    if over_capacity and capacity_retries < MAX_CAPACITY_RETRIES:
                        permit.over_capacity()
                        capacity_retries += 1
                        attempt -= 1
                        if self.limiter.static:
                            await self.limiter.next_release(self.retry.delay(1, exc.retry_after))
                        continue
                    if exc.congestion:
                        permit.congestion()
                    else:
                        permit.ignore()
                    # an answer in the wrong format is rarely fixed by asking again the same way
                    limit = (
                        min(2, self.retry.max_attempts)
                        if isinstance(exc, BadResponseError)
                        else self.retry.max_attempts
                    )
                    if not exc.retryable or attempt >= limit:
                        exc.attempts = attempt
                        raise
                    delay = self.retry.delay(attempt, exc.retry_after)
                    error = f"{type(exc).__name__}: {exc}"
                    log.debug(
                        "LLM call failed; retrying", error=error, attempt=attempt, retry_in=round(delay, 2)
                    )
                else:
                    permit.success(completion.latency_s)
                    span.set_attribute("gen_ai.usage.input_tokens", completion.prompt_tokens)
                    span.set_attribute("gen_ai.usage.output_tokens", completion.completion_tokens)
                    return completion, attempt, answer
            await asyncio.sleep(delay)
