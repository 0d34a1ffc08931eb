"""One synthesis stream: articles in, clusters released as they become complete, one story per cluster.

Every released cluster becomes a task that waits for a concurrency permit (the shared adaptive limiter,
capped per job by ``max_concurrency``), so the backend always has as much work as the limit allows and
no worker idles while a cluster waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.duration_pb2 import Duration
from opentelemetry import trace
from storywire.v1 import common_pb2, synthesizer_pb2

from runtime.ids import article_id
from services.synthesizer.clustering import Cluster, ClusterBackend, Doc, StreamClusterer
from services.synthesizer.stories.prompt import SourceArticle
from services.synthesizer.stories.writer import GenParams, StoryResult, StoryWriter

tracer = trace.get_tracer("storywire.synthesizer")
TIERS = {
    "miss": common_pb2.CACHE_TIER_MISS,
    "memory": common_pb2.CACHE_TIER_MEMORY,
    "redis": common_pb2.CACHE_TIER_REDIS,
}


@dataclass(frozen=True)
class SessionConfig:
    job_id: str
    threshold: float
    min_size: int
    params: GenParams
    max_concurrency: int  # 0 = no per-job cap
    release_idle: float  # seconds; 0 = cluster only at the end


@dataclass
class Totals:
    proto: common_pb2.SynthesisTotals = field(default_factory=common_pb2.SynthesisTotals)

    def add(self, r: StoryResult) -> None:
        t = self.proto
        t.llm_calls += r.llm_calls
        t.cache_hits += 1 if (r.cache_tier != "miss" or r.coalesced) else 0
        t.fallbacks += 1 if r.fallback else 0
        t.grounding_rejections += r.grounding_rejections
        for reason in r.rejection_reasons:
            t.rejection_reasons[reason] += 1
        t.usage.prompt_tokens += r.prompt_tokens
        t.usage.completion_tokens += r.completion_tokens
        t.usage.estimated = t.usage.estimated or r.estimated
        t.saved.prompt_tokens += r.saved_prompt_tokens
        t.saved.completion_tokens += r.saved_completion_tokens


def story_proto(job_id: str, cluster: Cluster, r: StoryResult) -> common_pb2.Story:
    latency = Duration()
    latency.FromNanoseconds(int(r.latency_s * 1e9))
    return common_pb2.Story(
        job_id=job_id,
        cluster_key=cluster.key,
        title=r.title,
        summary=r.summary,
        model=r.model,
        prompt_version=r.prompt_version,
        usage=common_pb2.TokenUsage(
            prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, estimated=r.estimated
        ),
        cache_hit=r.cache_tier != "miss" or r.coalesced,
        cache_tier=TIERS[r.cache_tier],
        fallback=r.fallback,
        fallback_reason=r.fallback_reason,
        article_ids=[d.id for d in cluster.docs],
        latency=latency,
        attempts=r.attempts,
    )


def doc_of(article: common_pb2.Article) -> Doc:
    aid = article.id or article_id(article.canonical_url, article.content_hash)
    return Doc.of(aid, article.title, article.text, article.content_hash or aid)


class SynthesisSession:
    def __init__(
        self, writer: StoryWriter, config: SessionConfig, backend: ClusterBackend | None = None
    ) -> None:
        self.writer = writer
        self.config = config
        self.clusterer = StreamClusterer(config.threshold, config.min_size, backend)
        self.totals = Totals()
        self.cluster_seconds = 0.0
        self.clusters = 0
        self._job_cap = asyncio.Semaphore(config.max_concurrency) if config.max_concurrency > 0 else None

    async def run(
        self, articles: AsyncIterator[common_pb2.Article]
    ) -> AsyncIterator[synthesizer_pb2.SynthesizeResponse]:
        """Responses in the order they happen: clusters as released, stories as written, then a summary."""
        started = time.perf_counter()
        self._out: asyncio.Queue[synthesizer_pb2.SynthesizeResponse | BaseException | None] = asyncio.Queue()
        self._active = 1  # the reader, plus one per cluster being written
        self._tasks: set[asyncio.Task[None]] = set()
        self._spawn(self._read(articles))
        try:
            while (item := await self._out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
            yield synthesizer_pb2.SynthesizeResponse(summary=self._summary(time.perf_counter() - started))
        finally:
            for task in self._tasks:
                task.cancel()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._out.put_nowait(exc)
            finally:
                self._active -= 1
                if self._active == 0:
                    self._out.put_nowait(None)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, articles: AsyncIterator[common_pb2.Article]) -> None:
        iterator = aiter(articles)
        unreleased = False
        idle = self.config.release_idle
        while True:
            try:
                if unreleased and idle > 0:
                    article = await asyncio.wait_for(anext(iterator), idle)
                else:
                    article = await anext(iterator)
            except StopAsyncIteration:
                break
            except TimeoutError:
                # the input paused: what is complete now is written while the rest arrives
                await self._release()
                unreleased = False
                continue
            self.clusterer.add(doc_of(article))
            unreleased = True
        await self._release()

    async def _release(self) -> None:
        t0 = time.perf_counter()
        with tracer.start_as_current_span("cluster") as span:
            span.set_attribute("storywire.cluster.open_articles", len(self.clusterer.open))
            span.set_attribute("storywire.cluster.backend", self.clusterer.backend.name)
            # CPU work in a thread, so the stories already being written keep streaming; the reader
            # (the only one that adds articles) waits for it, so nothing changes the open set meanwhile
            ready = await asyncio.to_thread(self.clusterer.release)
            span.set_attribute("storywire.cluster.released", len(ready))
        self.cluster_seconds += time.perf_counter() - t0
        for cluster in ready:
            self.clusters += 1
            ids = [d.id for d in cluster.docs]
            self._out.put_nowait(
                synthesizer_pb2.SynthesizeResponse(
                    cluster=common_pb2.Cluster(key=cluster.key, article_ids=ids, cohesion=cluster.cohesion)
                )
            )
            self._active += 1
            self._spawn(self._write(cluster))

    def _summary(self, elapsed_s: float) -> synthesizer_pb2.SynthesisSummary:
        elapsed, cluster_time = Duration(), Duration()
        elapsed.FromNanoseconds(int(elapsed_s * 1e9))
        cluster_time.FromNanoseconds(int(self.cluster_seconds * 1e9))
        return synthesizer_pb2.SynthesisSummary(
            articles=self.clusterer.seen,
            clusters=self.clusters,
            unclustered_articles=len(self.clusterer.open),
            totals=self.totals.proto,
            elapsed=elapsed,
            cluster_time=cluster_time,
        )

    async def _write(self, cluster: Cluster) -> None:
        sources = [SourceArticle(d.id, d.title, d.text, d.content_hash) for d in cluster.docs]
        if self._job_cap is not None:
            async with self._job_cap:
                result = await self.writer.write(sources, self.config.params)
        else:
            result = await self.writer.write(sources, self.config.params)
        self.totals.add(result)
        story = story_proto(self.config.job_id, cluster, result)
        self._out.put_nowait(synthesizer_pb2.SynthesizeResponse(story=story))
