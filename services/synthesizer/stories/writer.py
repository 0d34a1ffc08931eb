"""Writes one story for one cluster: the policy above the LLM client library (cache, coalescing, grounding,
regeneration, fallback).

Order of work for a cluster: look the request up in the cache (memory, then Redis); otherwise join an
identical request already in flight, or make the call through the resilient caller (permit, retries,
capacity handling: :mod:`services.synthesizer.llm.caller`), parse and check the text against the
articles; a rejected text is regenerated once with a stricter prompt; a cluster whose call fails for
good gets the extractive fallback. Only accepted LLM results are cached.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from opentelemetry import trace

from runtime.logging import get_logger
from services.synthesizer.llm.cache import TwoTierCache
from services.synthesizer.llm.caller import ResilientCaller, RetryPolicy, Spent
from services.synthesizer.llm.client import ChatRequest, OpenAIClient
from services.synthesizer.llm.coalesce import Coalescer
from services.synthesizer.llm.errors import LLMError
from services.synthesizer.llm.limiter import AdaptiveLimiter
from services.synthesizer.stories import grounding
from services.synthesizer.stories.fallback import EXTRACTIVE_MODEL, extractive_story
from services.synthesizer.stories.prompt import PROMPT_VERSION, SourceArticle, build_messages, parse_answer

log = get_logger(__name__)
tracer = trace.get_tracer("storywire.synthesizer")


@dataclass(frozen=True)
class GenParams:
    model: str
    max_tokens: int
    temperature: float


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
        self.caller = ResilientCaller(client, limiter, retry) if client is not None else None
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
        spent = Spent()  # every completion received counts, parsed or not
        reason = "no LLM backend configured (STORYWIRE_LLM_BASE_URL is empty)"
        for strict in (False, True):
            if self.caller is None:
                break
            request = ChatRequest(
                params.model, build_messages(articles, strict), params.max_tokens, params.temperature
            )
            try:
                got = await self.caller.call(request, parse_answer, spent, what="answer (TITLE/SUMMARY)")
            except LLMError as exc:
                attempts += exc.attempts
                calls += exc.attempts
                reason = f"LLM failed: {type(exc).__name__}: {exc}"
                break
            attempts += got.attempts
            calls += got.attempts
            prompt_tokens, completion_tokens, estimated = spent.prompt, spent.completion, spent.estimated
            title, summary = got.value
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
