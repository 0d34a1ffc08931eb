"""One synthesis stream: articles in, provisional clusters released while the input pauses, the final
clusters of all the articles at its end, one story per cluster.

A reader task drains the input into a queue, so the release timer never touches (cancels or closes) the
input stream: a pause only makes the session cluster what it has (provisional clusters, written at once
for time to first story); the input is read to its real end. Then every article is clustered at once
(:mod:`services.synthesizer.clustering.stream`): provisional clusters that are final clusters are
confirmed, the others are retired (``StoryRetired``, after their story), final clusters without a story
get one, and articles in final clusters below ``min_articles_per_story`` are left out with that reason.

Release rule: a provisional story whose cluster still grows costs an LLM call for nothing, and a slow
source or a long steady stream makes clusters grow, so early releases start small, grow as the
clustering proves stable, and hand out only settled clusters (no member for a few times the cluster's
expected gap between members: :mod:`services.synthesizer.clustering.stream`). The first time the input
has been quiet for ``release_idle``, one cluster is released (the biggest settled one, or the biggest
if none is: the first story comes early); each release may hand out twice as many as the one before;
while clusters big enough for a story are held back (over the budget, or not settled yet) and nothing
arrives, the next release waits twice as long as the last quiet period (any new article starts the wait
from ``release_idle`` again), and never comes before a held cluster, or a cluster of the articles that
arrived since, can be settled (``StreamClusterer.next_settle``: clustering everything still open at each
pause of a long job's input, for nothing, cost more than the final clustering).

Every cluster's story is a task that waits for a concurrency permit (the shared adaptive limiter, capped
per job by ``max_concurrency``), so the backend always has as much work as the limit allows.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from google.protobuf.duration_pb2 import Duration
from opentelemetry import trace
from storywire.v1 import common_pb2, synthesizer_pb2

from runtime.ids import article_id
from services.synthesizer.clustering import Cluster, ClusterBackend, Doc, FinalOutcome, StreamClusterer
from services.synthesizer.stories.prompt import SourceArticle
from services.synthesizer.stories.writer import GenParams, StoryResult

tracer = trace.get_tracer("storywire.synthesizer")
TIERS = {
    "miss": common_pb2.CACHE_TIER_MISS,
    "memory": common_pb2.CACHE_TIER_MEMORY,
    "redis": common_pb2.CACHE_TIER_REDIS,
    "store": common_pb2.CACHE_TIER_STORE,
}


_END = object()
INBOX_SIZE = 4096  # articles read ahead while the session clusters
#: the shortest wait for a held cluster's settle time (seconds): see SynthesisSession._drive
MIN_WAIT = 0.01
R = TypeVar("R")


class Writer(Protocol):
    """Writes one story for one cluster (:class:`services.synthesizer.stories.writer.StoryWriter`)."""

    async def write(self, articles: Sequence[SourceArticle], params: GenParams) -> StoryResult: ...


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


def left_out_proto(article_id: str, size: int, min_size: int) -> common_pb2.LeftOutArticle:
    return common_pb2.LeftOutArticle(
        article_id=article_id,
        reason=common_pb2.LEFT_OUT_REASON_CLUSTER_TOO_SMALL,
        detail=f"its final cluster has {size} article(s); min_articles_per_story is {min_size}",
    )


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
    published = article.published_at.ToSeconds() if article.HasField("published_at") else None
    return Doc.of(aid, article.title, article.text, article.content_hash or aid, published)


class SynthesisSession:
    def __init__(self, writer: Writer, config: SessionConfig, backend: ClusterBackend | None = None) -> None:
        self.writer = writer
        self.config = config
        self.clusterer = StreamClusterer(config.threshold, config.min_size, backend)
        self.totals = Totals()
        self.cluster_seconds = 0.0
        self.clusters = 0  # clusters released (provisional and final), each with a story
        self.first_story_s: float | None = None  # seconds from the start to the first story
        self._job_cap = asyncio.Semaphore(config.max_concurrency) if config.max_concurrency > 0 else None
        self._writes: dict[str, asyncio.Task[None]] = {}  # story task per released cluster key
        self._outcome: FinalOutcome | None = None

    @property
    def retired(self) -> int:
        """Provisional stories the final clustering retired (0 until the input has ended)."""
        return len(self._outcome.retired) if self._outcome is not None else 0

    async def run(
        self, articles: AsyncIterator[common_pb2.Article]
    ) -> AsyncGenerator[synthesizer_pb2.SynthesizeResponse, None]:
        """Responses in the order they happen: clusters as released, stories as written, retirements after
        the story they retire, then a summary."""
        self._started = time.perf_counter()
        self._out: asyncio.Queue[synthesizer_pb2.SynthesizeResponse | BaseException | None] = asyncio.Queue()
        self._active = 0  # the driver, plus one task per cluster being written or retired
        self._tasks: set[asyncio.Task[None]] = set()
        inbox: asyncio.Queue[object] = asyncio.Queue(maxsize=INBOX_SIZE)  # backpressure to the input
        reader = asyncio.create_task(self._read(articles, inbox))
        self._spawn(self._drive(inbox))
        try:
            while (item := await self._out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if item.WhichOneof("item") == "story" and self.first_story_s is None:
                    self.first_story_s = time.perf_counter() - self._started
                yield item
            summary = self._summary(time.perf_counter() - self._started)
            yield synthesizer_pb2.SynthesizeResponse(summary=summary)
        finally:
            pending = [reader, *self._tasks]
            for task in pending:
                task.cancel()
            # wait for them, so that every LLM permit is back before the stream is over
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        self._active += 1

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
        return task

    @staticmethod
    async def _read(articles: AsyncIterator[common_pb2.Article], inbox: asyncio.Queue[object]) -> None:
        """Drain the input into ``inbox`` to its end; an input error follows the articles before it."""
        try:
            async for article in articles:
                await inbox.put(article)
        except Exception as exc:
            await inbox.put(exc)
        else:
            await inbox.put(_END)

    async def _drive(self, inbox: asyncio.Queue[object]) -> None:
        """Read the inbox to its end, releasing provisional clusters while the input is quiet (the release
        rule: module docstring), then settle everything at once."""
        idle = self.config.release_idle
        budget = 1  # clusters the next early release may hand out
        quiet = idle  # how long the input must be quiet before the next early release
        pending = False  # articles arrived, or clusters were held back, since the last release
        clock = asyncio.get_running_loop().time  # arrival times and the release's "now"
        not_before: float | None = None  # no release before then (StreamClusterer.next_settle)
        empty = False  # the last release handed nothing out
        while True:
            try:
                if pending and idle > 0:
                    # held clusters settle at not_before at the earliest: until then a release is
                    # pointless. After a release that handed something out the doubled quiet time
                    # still applies (a long pause costs a few releases, not one per held cluster);
                    # after one that handed nothing out (the bound for new articles asked too early)
                    # the next is at not_before. At least MIN_WAIT: a timer may fire within the
                    # clock's resolution before its time, and waiting again for that sliver would spin
                    ahead = None if not_before is None else not_before - clock()
                    if ahead is None or ahead <= 0:
                        wait = quiet
                    else:
                        wait = max(ahead, MIN_WAIT) if empty else max(quiet, ahead)
                    async with asyncio.timeout(wait):  # waits on the queue only, never on the input
                        item = await inbox.get()
                else:
                    item = await inbox.get()
            except TimeoutError:
                not_before = self.clusterer.next_settle()
                if not_before is not None and not_before > clock():
                    continue  # no cluster can be settled yet: this release would hand out nothing
                # the input paused: what looks complete is written while the rest arrives
                release = functools.partial(self.clusterer.release, budget, clock())
                released = await self._cluster(release, "release")
                self._announce(released, provisional=True)
                budget = budget * 2 if released else budget
                pending = self.clusterer.held > 0
                # what it held back, and when that can be settled (exact now: nothing arrived since)
                not_before = self.clusterer.next_settle()
                empty = not released
                if released:
                    quiet *= 2  # each further release while nothing arrives waits twice as long
                continue
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, common_pb2.Article)
            self.clusterer.add(doc_of(item), clock())
            # an arrival may bring a cluster of new articles within reach: next_settle is asked again
            pending, quiet, not_before, empty = True, idle, None, False
        await self._finish()

    async def _cluster(self, step: Callable[[], R], kind: str) -> R:
        t0 = time.perf_counter()
        with tracer.start_as_current_span("cluster") as span:
            span.set_attribute("storywire.cluster.kind", kind)
            span.set_attribute("storywire.cluster.articles", self.clusterer.seen)
            span.set_attribute("storywire.cluster.backend", self.clusterer.backend.name)
            # CPU work in a thread, so the stories already being written keep streaming; the driver (the
            # only one that adds articles) waits for it, so nothing changes the article set meanwhile
            result = await asyncio.to_thread(step)
        self.cluster_seconds += time.perf_counter() - t0
        return result

    async def _finish(self) -> None:
        outcome = await self._cluster(self.clusterer.finish, "final")
        self._outcome = outcome
        for retirement in outcome.retired:
            message = synthesizer_pb2.StoryRetired(
                cluster_key=retirement.key, replaced_by=retirement.replaced_by
            )
            self._spawn(self._retire(self._writes[retirement.key], message))
        self._announce(outcome.new, provisional=False)

    def _announce(self, clusters: list[Cluster], *, provisional: bool) -> None:
        for cluster in clusters:
            self.clusters += 1
            proto = common_pb2.Cluster(
                key=cluster.key,
                article_ids=[d.id for d in cluster.docs],
                cohesion=cluster.cohesion,
                provisional=provisional,
            )
            self._out.put_nowait(synthesizer_pb2.SynthesizeResponse(cluster=proto))
            self._writes[cluster.key] = self._spawn(self._write(cluster))

    async def _retire(self, write: asyncio.Task[None], message: synthesizer_pb2.StoryRetired) -> None:
        await asyncio.wait([write])  # the retirement follows the story it retires
        self._out.put_nowait(synthesizer_pb2.SynthesizeResponse(retired=message))

    def _summary(self, elapsed_s: float) -> synthesizer_pb2.SynthesisSummary:
        elapsed, cluster_time = Duration(), Duration()
        elapsed.FromNanoseconds(int(elapsed_s * 1e9))
        cluster_time.FromNanoseconds(int(self.cluster_seconds * 1e9))
        outcome = self._outcome
        assert outcome is not None  # the summary follows the final clustering
        return synthesizer_pb2.SynthesisSummary(
            articles=self.clusterer.seen,
            clusters=self.clusters,
            unclustered_articles=len(outcome.left_out),
            totals=self.totals.proto,
            elapsed=elapsed,
            cluster_time=cluster_time,
            final_cluster_keys=[c.key for c in outcome.final],
            left_out=[left_out_proto(a, size, self.config.min_size) for a, size in outcome.left_out],
            retired_stories=len(outcome.retired),
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
