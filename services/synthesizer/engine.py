"""One LLM engine per synthesizer process: the pooled client, the two-tier cache, the adaptive limiter and
the story writer, shared by every synthesis stream and job; plus its statistics and metrics."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Self

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from storywire.v1 import common_pb2, synthesizer_pb2

from runtime.settings import SettingsError
from services.synthesizer.clustering import ClusterBackend, TfidfBackend
from services.synthesizer.clustering.embeddings import EmbeddingsUnavailableError, MiniLMEncoder
from services.synthesizer.clustering.events import EventBackend
from services.synthesizer.llm.cache import MemoryTier, RedisTier, TierStats, TwoTierCache
from services.synthesizer.llm.caller import RetryPolicy
from services.synthesizer.llm.client import OpenAIClient
from services.synthesizer.llm.limiter import AdaptiveLimiter
from services.synthesizer.session import SessionConfig, SynthesisSession
from services.synthesizer.settings import SynthesizerSettings
from services.synthesizer.stories.writer import GenParams, StoryWriter

DEFAULT_MIN_ARTICLES = 2


def cluster_backend(settings: SynthesizerSettings) -> ClusterBackend:
    """The configured clustering backend; a missing optional extra is a settings error (exit 2)."""
    if settings.cluster_backend == "events":
        return EventBackend()
    if settings.cluster_backend == "tfidf":
        return TfidfBackend()
    try:
        from services.synthesizer.clustering.dense import EmbeddingBackend  # noqa: PLC0415 - optional extra

        model_dir = settings.cluster_embeddings_model_dir
        return EmbeddingBackend(MiniLMEncoder(Path(model_dir) if model_dir else None))
    except EmbeddingsUnavailableError as exc:
        raise SettingsError(f"STORYWIRE_CLUSTER_BACKEND='embeddings': {exc}") from None


class Engine:
    """Closed with ``aclose()``, or used as ``async with Engine(settings) as engine:``."""

    def __init__(self, settings: SynthesizerSettings) -> None:
        self.settings = s = settings
        self.client = (
            OpenAIClient(
                s.llm_base_url,
                s.llm_api_key.get_secret_value(),
                connect_timeout=s.llm_connect_timeout_seconds,
                read_timeout=s.llm_read_timeout_seconds,
                total_timeout=s.llm_total_timeout_seconds,
            )
            if s.llm_base_url
            else None
        )
        self.cache = TwoTierCache(
            MemoryTier(s.cache_memory_bytes), RedisTier(s.redis_url, s.cache_ttl_seconds)
        )
        if s.llm_max_workers:
            self.limiter = AdaptiveLimiter(
                s.llm_max_workers, s.llm_max_workers, s.llm_max_workers, static=True
            )
        else:
            self.limiter = AdaptiveLimiter(
                s.llm_concurrency_initial, s.llm_concurrency_min, s.llm_concurrency_max
            )
        self.writer = StoryWriter(
            self.client, self.cache, self.limiter, RetryPolicy(max_attempts=s.llm_max_attempts),
            prompt=s.llm_prompt, structured=s.llm_structured_output,
        )  # fmt: skip
        self.cluster_backend = cluster_backend(s)
        self.saved = common_pb2.TokenUsage()
        self._register_metrics()

    def session(self, config: synthesizer_pb2.SynthesisConfig) -> SynthesisSession:
        s = self.settings
        params = GenParams(
            model=config.model or s.llm_model,
            max_tokens=config.max_tokens or s.llm_max_tokens,
            temperature=config.temperature if config.HasField("temperature") else s.llm_temperature,
        )
        return SynthesisSession(
            self.writer,
            SessionConfig(
                job_id=config.job_id,
                threshold=config.similarity_threshold or self.cluster_backend.default_threshold,
                min_size=config.min_articles_per_story or DEFAULT_MIN_ARTICLES,
                params=params,
                max_concurrency=config.max_concurrency,
                release_idle=s.cluster_release_idle_ms / 1000,
            ),
            self.cluster_backend,
        )

    def stalled_for(self) -> float:
        """Seconds that work has waited for the LLM while no call made progress (0 when idle or moving):
        the health check reports NOT_SERVING past ``llm_stall_seconds``."""
        return self.limiter.stalled_for()

    def record_saved(self, totals: common_pb2.SynthesisTotals) -> None:
        self.saved.prompt_tokens += totals.saved.prompt_tokens
        self.saved.completion_tokens += totals.saved.completion_tokens

    def stats(self) -> synthesizer_pb2.GetCacheStatsResponse:
        def tier(kind: common_pb2.CacheTier.ValueType, st: TierStats) -> common_pb2.CacheTierStats:
            return common_pb2.CacheTierStats(
                tier=kind, hits=st.hits, misses=st.misses, writes=st.writes, evictions=st.evictions,
                bytes=st.bytes, entries=st.entries, errors=st.errors, available=st.available,
            )  # fmt: skip

        return synthesizer_pb2.GetCacheStatsResponse(
            tiers=[
                tier(common_pb2.CACHE_TIER_MEMORY, self.cache.memory.stats),
                tier(common_pb2.CACHE_TIER_REDIS, self.cache.redis.stats),
            ],
            coalesced=self.writer.coalescer.coalesced,
            concurrency_limit=self.limiter.limit,
            in_flight=self.limiter.in_flight,
            saved=self.saved,
        )

    def _register_metrics(self) -> None:
        meter = metrics.get_meter("storywire.synthesizer")

        def cache_counts(_: CallbackOptions) -> Iterable[Observation]:
            for name, st in (("memory", self.cache.memory.stats), ("redis", self.cache.redis.stats)):
                yield Observation(st.hits, {"tier": name, "result": "hit"})
                yield Observation(st.misses, {"tier": name, "result": "miss"})

        def limiter_state(_: CallbackOptions) -> Iterable[Observation]:
            yield Observation(self.limiter.limit, {"kind": "limit"})
            yield Observation(self.limiter.in_flight, {"kind": "in_flight"})

        meter.create_observable_counter(
            "storywire.llm.cache.lookups", [cache_counts], description="cache lookups"
        )
        meter.create_observable_gauge(
            "storywire.llm.concurrency", [limiter_state], description="LLM concurrency"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        await self.cache.redis.aclose()
