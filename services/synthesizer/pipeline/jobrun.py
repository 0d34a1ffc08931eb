"""One run of one job: three concurrent streams (fetch, write articles, write stories) around this
process's synthesis session, plus a progress loop that renews the lease and notices cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
from storywire.v1 import common_pb2, fetcher_pb2, store_pb2, synthesizer_pb2

from runtime.batching import queue_batches
from runtime.logging import get_logger
from runtime.telemetry import current_trace_id

if TYPE_CHECKING:
    from services.synthesizer.pipeline.coordinator import Coordinator

log = get_logger(__name__)
ARTICLE_CHUNK = 200
STORY_CHUNK = 50
FETCH_BATCH = 250  # articles per Fetch message
CHUNK_LINGER = 0.02  # seconds a write chunk waits for more items before it is sent
PROGRESS_INTERVAL = 0.25
S = common_pb2


class CancelledByUserError(Exception):
    """The job was cancelled in the store."""


class LeaseLostError(Exception):
    """Another worker owns the job now."""


class JobRun:
    def __init__(self, coordinator: Coordinator, job: common_pb2.Job, lease_token: str) -> None:
        self.c = coordinator
        self.job = job
        self.token = lease_token
        self.stages = {
            s: S.StageProgress(stage=s) for s in (S.STAGE_FETCH, S.STAGE_CLUSTER, S.STAGE_SYNTHESIZE)
        }
        self.totals = S.SynthesisTotals()
        self.state = S.JOB_STATE_FETCHING
        self.warnings: list[str] = []
        self._sources: set[str] = set()
        self._first_error = ""
        self._written_keys: set[str] = set()  # cluster keys of the stories this attempt wrote
        self._dirty = asyncio.Event()

    def _stamp(self, stage: common_pb2.Stage.ValueType, finished: bool = False) -> None:
        progress = self.stages[stage]
        if not progress.HasField("started_at"):
            progress.started_at.GetCurrentTime()
        if finished:
            progress.finished_at.GetCurrentTime()
        self._dirty.set()

    async def _update(
        self,
        state: common_pb2.JobState.ValueType = S.JOB_STATE_UNSPECIFIED,
        error: str = "",
        final_keys: list[str] | None = None,
    ) -> None:
        warnings, self.warnings = self.warnings, []
        request = store_pb2.UpdateJobRequest(
            job_id=self.job.id, lease_token=self.token, state=state, stages=list(self.stages.values()),
            totals=self.totals, error=error, trace_id=current_trace_id(), warnings=warnings,
            final_cluster_keys=final_keys or [],
        )  # fmt: skip
        try:
            reply = await self.c.store.UpdateJob(request, timeout=15)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise LeaseLostError(exc.details() or "lease lost") from None
            raise
        if reply.cancel_requested:
            raise CancelledByUserError

    async def run(self) -> None:
        started = time.perf_counter()
        log.info("job started", job_id=self.job.id, attempt=self.job.attempts, urls=len(self.job.spec.urls))
        try:
            self.stages[S.STAGE_FETCH].total = len(self.job.spec.urls)
            self._stamp(S.STAGE_FETCH)
            await self._update(S.JOB_STATE_FETCHING)
            await self._pipeline()
            fetch = self.stages[S.STAGE_FETCH]
            if fetch.total and fetch.failed == fetch.total:
                reason = f"all {fetch.total} URLs failed; first: {self._first_error}"
                await self._update(S.JOB_STATE_FAILED, error=reason)
                log.warning(
                    "job failed: no URL could be fetched", job_id=self.job.id, first_error=self._first_error
                )
                return
            self.state = S.JOB_STATE_DONE
            await self._update(S.JOB_STATE_DONE, final_keys=sorted(self._written_keys))
            log.info("job done", job_id=self.job.id, seconds=round(time.perf_counter() - started, 3),
                     stories=self.stages[S.STAGE_SYNTHESIZE].done, llm_calls=self.totals.llm_calls,
                     cache_hits=self.totals.cache_hits, fallbacks=self.totals.fallbacks)  # fmt: skip
        except CancelledByUserError:
            log.info("job cancelled; stopped", job_id=self.job.id)
        except LeaseLostError as exc:
            log.warning("job lease lost; another worker has it", job_id=self.job.id, detail=str(exc))
        except grpc.aio.AioRpcError as exc:
            await self._infrastructure_failure(f"{exc.code().name}: {exc.details()}")

    async def _infrastructure_failure(self, detail: str) -> None:
        if self.job.attempts < self.c.settings.worker_max_attempts:
            # leave it claimed: the lease expires and a worker tries again
            log.warning("job run failed; it will be retried after its lease expires",
                        job_id=self.job.id, attempt=self.job.attempts, error=detail)  # fmt: skip
            return
        log.error("job failed for good", job_id=self.job.id, attempts=self.job.attempts, error=detail)
        try:
            await self._update(S.JOB_STATE_FAILED, error=f"after {self.job.attempts} attempts: {detail}")
        except (grpc.aio.AioRpcError, LeaseLostError, CancelledByUserError) as exc:
            log.warning("could not record the failure", job_id=self.job.id, error=str(exc))

    async def _pipeline(self) -> None:
        to_store: asyncio.Queue[common_pb2.Article | None] = asyncio.Queue(maxsize=10_000)
        to_synth: asyncio.Queue[common_pb2.Article | None] = asyncio.Queue()
        stories: asyncio.Queue[common_pb2.Story | None] = asyncio.Queue()
        work = [
            asyncio.create_task(self._fetch(to_store, to_synth)),
            asyncio.create_task(self._write_articles(to_store)),
            asyncio.create_task(self._synthesize(to_synth, stories)),
            asyncio.create_task(self._write_stories(stories)),
        ]
        progress = asyncio.create_task(self._progress_loop())
        try:
            pending: set[asyncio.Task[None]] = set(work)
            while pending:
                done, _ = await asyncio.wait(pending | {progress}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # re-raise the first failure: cancellation, lost lease, an RPC error
                pending -= done
        finally:
            for task in [*work, progress]:
                task.cancel()
            await asyncio.gather(*work, progress, return_exceptions=True)

    async def _progress_loop(self) -> None:
        """Report progress when something changed, and at least every third of the lease (renewal)."""
        renew_every = self.c.settings.worker_lease_seconds / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), renew_every)
            self._dirty.clear()
            await self._update()
            await asyncio.sleep(PROGRESS_INTERVAL)

    async def _fetch(self, to_store: asyncio.Queue[common_pb2.Article | None],
                     to_synth: asyncio.Queue[common_pb2.Article | None]) -> None:  # fmt: skip
        o = self.job.spec.options
        request = fetcher_pb2.FetchRequest(
            urls=self.job.spec.urls, job_id=self.job.id,
            options=fetcher_pb2.FetchOptions(
                time_window_hours=o.time_window_hours, max_articles=o.max_articles,
                per_host_concurrency=o.per_host_concurrency, timeout_seconds=o.fetch_timeout_seconds,
                full_text=o.full_text, batch_size=FETCH_BATCH,
            ),
        )  # fmt: skip
        fetch = self.stages[S.STAGE_FETCH]
        try:
            async for response in self.c.fetcher.Fetch(request):
                kind = response.WhichOneof("item")
                if kind in ("article", "batch"):
                    batch = [response.article] if kind == "article" else response.batch.articles
                    for article in batch:
                        await to_store.put(article)
                        await to_synth.put(article)
                        self._sources.add(article.source_url)
                        self._count_article()
                    fetch.done = len(self._sources) + fetch.failed
                elif kind == "error":
                    fetch.failed += 1
                    fetch.done = len(self._sources) + fetch.failed
                    self.warnings.append(f"{response.error.url}: {response.error.detail}")
                    self._first_error = self._first_error or self.warnings[-1]
                else:
                    fetch.done = response.summary.urls_ok + response.summary.urls_failed
                self._dirty.set()
        finally:
            await to_store.put(None)
            await to_synth.put(None)
        self._stamp(S.STAGE_FETCH, finished=True)

    def _count_article(self) -> None:
        cluster = self.stages[S.STAGE_CLUSTER]
        self._stamp(S.STAGE_CLUSTER)
        cluster.total += 1

    async def _write_articles(self, queue: asyncio.Queue[common_pb2.Article | None]) -> None:
        async def chunks() -> AsyncIterator[store_pb2.PutArticlesRequest]:
            async for chunk in queue_batches(queue, ARTICLE_CHUNK, CHUNK_LINGER):
                yield store_pb2.PutArticlesRequest(articles=chunk)

        reply = await self.c.store.PutArticles(chunks())
        for rejected in reply.result.rejected:
            self.warnings.append(f"article {rejected.key} not stored: {rejected.reason}")

    async def _synthesize(self, articles: asyncio.Queue[common_pb2.Article | None],
                          stories: asyncio.Queue[common_pb2.Story | None]) -> None:  # fmt: skip
        o = self.job.spec.options
        config = synthesizer_pb2.SynthesisConfig(
            job_id=self.job.id, similarity_threshold=o.similarity_threshold,
            min_articles_per_story=o.min_articles_per_story, model=o.model, max_concurrency=o.max_concurrency,
            max_tokens=o.max_tokens,
        )  # fmt: skip
        if o.HasField("temperature"):
            config.temperature = o.temperature
        session = self.c.engine.session(config)
        cluster, synth = self.stages[S.STAGE_CLUSTER], self.stages[S.STAGE_SYNTHESIZE]
        try:
            async for response in session.run(self.c.articles_in(articles)):
                kind = response.WhichOneof("item")
                if kind == "cluster":
                    if self.state == S.JOB_STATE_FETCHING:
                        self.state = S.JOB_STATE_SYNTHESIZING
                        await self._update(S.JOB_STATE_SYNTHESIZING)
                    cluster.done += len(response.cluster.article_ids)
                    if self.stages[S.STAGE_FETCH].HasField("finished_at"):
                        self._stamp(
                            S.STAGE_CLUSTER, finished=True
                        )  # the input ended: this is the last release
                    self._stamp(S.STAGE_SYNTHESIZE)
                    synth.total += 1
                elif kind == "story":
                    synth.done += 1
                    synth.failed += int(response.story.fallback)
                    self.totals.CopyFrom(session.totals.proto)
                    self._written_keys.add(response.story.cluster_key)
                    await stories.put(response.story)
                else:
                    cluster.failed = response.summary.unclustered_articles
                    self.totals.CopyFrom(response.summary.totals)
                    self.c.engine.record_saved(response.summary.totals)
                self._dirty.set()
        finally:
            await stories.put(None)
        if not cluster.HasField("finished_at"):
            self._stamp(S.STAGE_CLUSTER, finished=True)
        self._stamp(S.STAGE_SYNTHESIZE, finished=True)
        if self.state != S.JOB_STATE_STORING:
            self.state = S.JOB_STATE_STORING
            await self._update(S.JOB_STATE_STORING)

    async def _write_stories(self, queue: asyncio.Queue[common_pb2.Story | None]) -> None:
        async def each() -> AsyncIterator[store_pb2.PutStoriesRequest]:
            async for chunk in queue_batches(queue, STORY_CHUNK, CHUNK_LINGER):
                yield store_pb2.PutStoriesRequest(stories=chunk)

        reply = await self.c.store.PutStories(each())
        for rejected in reply.result.rejected:
            self.warnings.append(f"story {rejected.key} not stored: {rejected.reason}")
