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
from services.synthesizer.llm.client import OpenAIClient
from services.synthesizer.llm.coalesce import Coalescer
from services.synthesizer.llm.errors import BadResponseError, LLMError, RequestRejectedError
from services.synthesizer.llm.limiter import AdaptiveLimiter
from services.synthesizer.stories import grounding
from services.synthesizer.stories.fallback import EXTRACTIVE_MODEL, extractive_story
from services.synthesizer.stories.prompt import PROMPT_VERSION, SourceArticle, parse_answer
from services.synthesizer.stories.structured import Plan, Planner, PromptMode, StructuredMode

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
    #: why each answer was rejected: a grounding.Problem code, or "format" (not parseable)
    rejection_reasons: list[str] = field(default_factory=list)
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
        *,
        prompt: PromptMode = "auto",
        structured: StructuredMode = "auto",
    ) -> None:
        self.client = client
        self.cache = cache
        self.limiter = limiter
        self.caller = ResilientCaller(client, limiter, retry) if client is not None else None
        self.coalescer: Coalescer[tuple[_Generated | None, StoryResult]] = Coalescer()
        self.planner = Planner(client, prompt, structured)

    @staticmethod
    def cache_key(articles: Sequence[SourceArticle], params: GenParams, version: str = PROMPT_VERSION) -> str:
        material = json.dumps(
            [params.model, version, sorted(a.content_hash for a in articles), params.max_tokens,
             params.temperature],
            separators=(",", ":"),
        )  # fmt: skip
        return hashlib.sha256(material.encode()).hexdigest()

    async def write(self, articles: Sequence[SourceArticle], params: GenParams) -> StoryResult:
        started = time.perf_counter()
        plan = await self.planner.plan()
        key = self.cache_key(articles, params, plan.version)
        cached = await self.cache.get(key)
        if cached is not None:
            value, tier = cached
            gen = _Generated(**json.loads(value))
            result = StoryResult(
                gen.title, gen.summary, gen.model, plan.version, cache_tier=tier,
                saved_prompt_tokens=gen.prompt_tokens, saved_completion_tokens=gen.completion_tokens,
            )  # fmt: skip
        else:
            (_, shared), joined = await self.coalescer.run(
                key, lambda: self._generate(key, articles, params, plan)
            )
            result = StoryResult(**asdict(shared))
            if joined:  # another caller paid for it; this one cost nothing
                result.coalesced = True
                result.saved_prompt_tokens = result.prompt_tokens
                result.saved_completion_tokens = result.completion_tokens
                result.prompt_tokens = result.completion_tokens = result.llm_calls = result.attempts = 0
                result.grounding_rejections = 0
                result.rejection_reasons = []
        result.latency_s = time.perf_counter() - started
        return result

    async def _generate(
        self, key: str, articles: Sequence[SourceArticle], params: GenParams, plan: Plan
    ) -> tuple[_Generated | None, StoryResult]:
        calls = attempts = rejections = 0
        reasons: list[str] = []
        spent = Spent()  # every completion received counts, parsed or not
        reason = "no LLM backend configured (STORYWIRE_LLM_BASE_URL is empty)"
        rounds = [False, True]  # the first answer, then the stricter prompt
        while rounds and self.caller is not None:
            strict = rounds.pop(0)
            request = plan.request(
                params.model, list(articles), params.max_tokens, params.temperature, strict
            )
            try:
                got = await self.caller.call(
                    request, parse_answer, spent, what=f"answer ({plan.spec.answer})"
                )
            except RequestRejectedError as exc:
                attempts += exc.attempts
                calls += exc.attempts
                if plan.enforcement == "off":
                    reason = f"LLM failed: {type(exc).__name__}: {exc}"
                    break
                # no structured output here: ask again in the text format
                self.planner.structured_unsupported(plan, exc)
                plan = await self.planner.plan()
                rounds.insert(0, strict)
                continue
            except LLMError as exc:
                attempts += exc.attempts
                calls += exc.attempts
                reason = f"LLM failed: {type(exc).__name__}: {exc}"
                if isinstance(exc, BadResponseError):
                    reasons.append("format")
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
                    title, summary, params.model, plan.version, prompt_tokens, completion_tokens, estimated,
                    attempts=attempts, llm_calls=calls, grounding_rejections=rejections,
                    rejection_reasons=reasons,
                )  # fmt: skip
                return gen, result
            rejections += 1
            reasons.extend(p.code for p in problems)
            reason = "grounding check failed: " + "; ".join(map(str, problems))
            log.info(
                "story rejected by the grounding check", problems=[str(p) for p in problems], strict=strict
            )
        with tracer.start_as_current_span("story.fallback") as span:
            span.set_attribute("storywire.fallback.reason", reason[:200])
            title, summary = extractive_story(articles)
        result = StoryResult(
            title, summary, EXTRACTIVE_MODEL, plan.version, spent.prompt, spent.completion, spent.estimated,
            fallback=True, fallback_reason=reason, attempts=attempts, llm_calls=calls,
            grounding_rejections=rejections, rejection_reasons=reasons,
        )  # fmt: skip
        return None, result
