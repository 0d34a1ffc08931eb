"""One run (attempt) of one job: three concurrent streams (fetch, write articles, write stories) around
this process's synthesis session, guarded by the lease side (``lease.py``: progress and renewal, the
cancel watch). Every stream has a progress watchdog. A run that fails on infrastructure, or whose replica
is stopping, gives the job back at once (``release``) instead of letting its lease run out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
from storywire.v1 import common_pb2, fetcher_pb2, store_pb2, synthesizer_pb2

from runtime.batching import queue_batches
from runtime.logging import get_logger
from services.synthesizer.pipeline.lease import (
    CancelledByUserError,
    LeasedRun,
    LeaseLostError,
    RpcFailedError,
    failed,
    fenced_out,
)
from services.synthesizer.pipeline.reuse import ReusingWriter, stored_llm_stories
from services.synthesizer.pipeline.supervise import supervise
from services.synthesizer.pipeline.watchdog import (
    Activity,
    StreamStalledError,
    Watchdog,
    guarded,
    requests_watched,
)
from services.synthesizer.session import SynthesisSession

log = get_logger(__name__)
ARTICLE_CHUNK = 200
STORY_CHUNK = 50
FETCH_BATCH = 250  # articles per Fetch message
CHUNK_LINGER = 0.02  # seconds a write chunk waits for more items before it is sent
S = common_pb2
#: a stopping replica's job becomes claimable after this long: the replica's own long polls, cancelled as
#: it stops, are gone by then and cannot take the job back (the store may see their cancellation late)
STOPPING_RELEASE_DELAY = 0.5
#: after the LLM work, no progress (no task ending, no stream moving) for this many watchdog periods fails
#: the attempt
STALL_WATCHDOGS = 3
ArticleQueue = asyncio.Queue[common_pb2.Article | None]
Req = TypeVar("Req")
Rep = TypeVar("Rep", store_pb2.PutArticlesResponse, store_pb2.PutStoriesResponse)


class JobRun(LeasedRun):
    @functools.cached_property
    def _activity(self) -> Activity:
        """The attempt's (a run is one attempt): its streams' watchdogs report to it, the net counts from
        it. Made on first use, in the event loop whose clock it reads."""
        return Activity()

    async def run(self) -> None:
        started = time.perf_counter()
        log.info("job started", job_id=self.job.id, attempt=self.job.attempts, urls=len(self.job.spec.urls))
        try:
            await self._run()
            log.info("job run ended", job_id=self.job.id, seconds=round(time.perf_counter() - started, 3))
        except CancelledByUserError:
            log.info("job cancelled; stopped", job_id=self.job.id)
        except LeaseLostError as exc:
            log.warning(
                "job lease lost: another worker has it, or it ended (a cancel)",
                job_id=self.job.id,
                detail=str(exc),
            )
        except (RpcFailedError, StreamStalledError) as exc:
            await self._infrastructure_failure(str(exc))
        except asyncio.CancelledError:
            if self.c.stopping:
                await self._release("the worker is stopping", STOPPING_RELEASE_DELAY, handover=True)
            raise

    async def _run(self) -> None:
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
        job = await self._update(S.JOB_STATE_DONE)
        a = job.accounting
        if job.state != S.JOB_STATE_DONE:
            log.error("job failed at the end", job_id=self.job.id, error=job.error)
            return
        log.info("job done", job_id=self.job.id, stories=a.stories, entries=a.entries_found,
                 in_stories=a.in_stories, llm_calls=self.totals.llm_calls, cache_hits=self.totals.cache_hits,
                 reused=self.reused, fallbacks=self.totals.fallbacks)  # fmt: skip

    async def _infrastructure_failure(self, detail: str) -> None:
        attempt = self.job.attempts
        if attempt < self.c.settings.worker_max_attempts:
            delay = float(attempt)  # 1 s, 2 s, ...: a brief outage costs little, a long one few attempts
            log.warning("job run failed; the job is given back for another attempt", job_id=self.job.id,
                        attempt=attempt, retry_in_seconds=delay, error=detail)  # fmt: skip
            await self._release(detail, delay)
            return
        log.error("job failed for good", job_id=self.job.id, attempts=attempt, error=detail)
        try:
            await self._update(S.JOB_STATE_FAILED, error=f"after {attempt} attempts: {detail}")
        except (RpcFailedError, LeaseLostError, CancelledByUserError) as exc:
            log.warning("could not record the failure", job_id=self.job.id, error=str(exc))

    async def _pipeline(self) -> None:
        session = await self._session()
        to_store: asyncio.Queue[common_pb2.Article | None] = asyncio.Queue(maxsize=10_000)
        to_synth: asyncio.Queue[common_pb2.Article | None] = asyncio.Queue()
        stories: asyncio.Queue[common_pb2.Story | None] = asyncio.Queue()
        work = {
            asyncio.create_task(self._fetch(to_store, to_synth), name="fetch"),
            asyncio.create_task(self._write_articles(to_store), name="write articles"),
            asyncio.create_task(self._synthesize(session, to_synth, stories), name="synthesize"),
            asyncio.create_task(self._write_stories(stories), name="write stories"),
        }
        guards = {
            asyncio.create_task(self._progress_loop(), name="progress"),
            asyncio.create_task(self._watch_cancel(), name="cancel watch"),
        }
        await supervise(work, guards, self._idle_limit, self._activity)

    def _idle_limit(self) -> float | None:
        """Once the LLM work is over only store writes are left, each watched by its own watchdog: no task
        ending and no stream moving for three watchdog periods then means a stall the watchdogs missed
        (None before: an LLM call may rightly take minutes)."""
        return STALL_WATCHDOGS * self._watchdog if self.state == S.JOB_STATE_STORING else None

    async def _session(self) -> SynthesisSession:
        o = self.job.spec.options
        config = synthesizer_pb2.SynthesisConfig(
            job_id=self.job.id, similarity_threshold=o.similarity_threshold,
            min_articles_per_story=o.min_articles_per_story, model=o.model, max_concurrency=o.max_concurrency,
            max_tokens=o.max_tokens,
        )  # fmt: skip
        if o.HasField("temperature"):
            config.temperature = o.temperature
        session = self.c.engine.session(config)
        # a resumed job (after a lease that ran out: a later attempt; after a handover: the same attempt
        # number, with the progress it reported): what an earlier run stored is reused, not rewritten
        if self.job.attempts > 1 or any(s.total or s.done for s in self.job.stages):
            try:
                stored = await stored_llm_stories(self.c.store, self.job.id, self.c.rpc_timeout)
            except grpc.aio.AioRpcError as exc:
                raise failed("store.ListStories", exc) from None
            if stored:
                planner = self.c.engine.writer.planner  # full or compact, by backend; asked per story

                async def version() -> str:
                    return (await planner.plan()).version

                session.writer = ReusingWriter(session.writer, stored, version)
        return session

    async def _fetch(self, to_store: asyncio.Queue[common_pb2.Article | None],
                     to_synth: asyncio.Queue[common_pb2.Article | None]) -> None:  # fmt: skip
        o = self.job.spec.options
        request = fetcher_pb2.FetchRequest(
            urls=self.job.spec.urls, job_id=self.job.id,
            options=fetcher_pb2.FetchOptions(
                time_window_hours=o.time_window_hours, max_articles=o.max_articles,
                per_host_concurrency=o.per_host_concurrency, timeout_seconds=o.fetch_timeout_seconds,
                full_text=o.full_text, batch_size=FETCH_BATCH,
                heartbeat_seconds=min(self._watchdog / 4, 5.0),
            ),
        )  # fmt: skip
        dog = self._dog("fetcher.Fetch")
        dog.expect()

        async def consume() -> None:
            # wait_for_ready: a fetcher that is restarting is waited for (the watchdog bounds the wait),
            # not a failed attempt; a job gets few attempts
            async for response in self.c.fetcher.Fetch(request, wait_for_ready=True):
                dog.progress()
                dog.expect(False)  # our own queues may make us wait: that is not the fetcher's stall
                await self._on_fetched(response, to_store, to_synth)
                dog.expect()

        try:
            await guarded(dog, consume())
        except grpc.aio.AioRpcError as exc:
            raise failed("fetcher.Fetch", exc) from None
        except BaseException:
            # the attempt is failing and its consumers are being cancelled: waiting to put an end marker
            # on a full queue nobody reads any more would hold this task for good
            for queue in (to_store, to_synth):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
            raise
        await to_store.put(None)
        await to_synth.put(None)
        self._stamp(S.STAGE_FETCH, finished=True)

    async def _on_fetched(self, response: fetcher_pb2.FetchResponse, to_store: ArticleQueue,
                          to_synth: ArticleQueue) -> None:  # fmt: skip
        fetch = self.stages[S.STAGE_FETCH]
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
        elif kind == "skipped":
            self.ledger.not_taken.extend(response.skipped.entries)
        elif kind == "summary":
            fetch.done = response.summary.urls_ok + response.summary.urls_failed
            self.ledger.entries_found = response.summary.entries_found
        else:
            return  # a heartbeat
        self._dirty.set()

    def _count_article(self) -> None:
        cluster = self.stages[S.STAGE_CLUSTER]
        self._stamp(S.STAGE_CLUSTER)
        cluster.total += 1

    async def _write_articles(self, queue: asyncio.Queue[common_pb2.Article | None]) -> None:
        async def chunks() -> AsyncIterator[store_pb2.PutArticlesRequest]:
            async for chunk in queue_batches(queue, ARTICLE_CHUNK, CHUNK_LINGER):
                self.ledger.written.extend(a.id for a in chunk)
                yield store_pb2.PutArticlesRequest(
                    articles=chunk, job_id=self.job.id, attempt=self.job.attempts, lease_token=self.token
                )

        reply = await self._put("store.PutArticles", self.c.store.PutArticles, chunks())
        self.ledger.store_rejected(list(reply.result.rejected))
        for rejected in reply.result.rejected:
            self.warnings.append(f"article {rejected.key} not stored: {rejected.reason}")

    async def _synthesize(self, session: SynthesisSession, articles: asyncio.Queue[common_pb2.Article | None],
                          stories: asyncio.Queue[common_pb2.Story | None]) -> None:  # fmt: skip
        try:
            async for response in session.run(self.c.articles_in(articles)):
                await self._on_synthesized(session, response, stories)
                self._dirty.set()
        finally:
            await stories.put(None)
        if isinstance(session.writer, ReusingWriter):
            self.reused = session.writer.reused
        cluster = self.stages[S.STAGE_CLUSTER]
        if not cluster.HasField("finished_at"):
            self._stamp(S.STAGE_CLUSTER, finished=True)
        self._stamp(S.STAGE_SYNTHESIZE, finished=True)
        if self.state != S.JOB_STATE_STORING:
            self.state = S.JOB_STATE_STORING
            await self._update(S.JOB_STATE_STORING)

    async def _on_synthesized(self, session: SynthesisSession, response: synthesizer_pb2.SynthesizeResponse,
                              stories: asyncio.Queue[common_pb2.Story | None]) -> None:  # fmt: skip
        cluster, synth = self.stages[S.STAGE_CLUSTER], self.stages[S.STAGE_SYNTHESIZE]
        kind = response.WhichOneof("item")
        if kind == "cluster":
            if self.state == S.JOB_STATE_FETCHING:
                self.state = S.JOB_STATE_SYNTHESIZING
                await self._update(S.JOB_STATE_SYNTHESIZING)
            self._cluster_sizes[response.cluster.key] = len(response.cluster.article_ids)
            cluster.done += len(response.cluster.article_ids)
            if self.stages[S.STAGE_FETCH].HasField("finished_at"):
                self._stamp(S.STAGE_CLUSTER, finished=True)  # the input ended: this is the last release
            self._stamp(S.STAGE_SYNTHESIZE)
            synth.total += 1
        elif kind == "story":
            synth.done += 1
            synth.failed += int(response.story.fallback)
            self.totals.CopyFrom(session.totals.proto)
            self._written[response.story.cluster_key] = response.story
            await stories.put(response.story)
        elif kind == "retired":
            self._retire(response.retired)
        else:
            summary = response.summary
            cluster.failed = summary.unclustered_articles
            self.totals.CopyFrom(summary.totals)
            self._final_keys = list(summary.final_cluster_keys)
            self.ledger.synthesis_left_out = list(summary.left_out)
            self.c.engine.record_saved(summary.totals)

    def _retire(self, retired: synthesizer_pb2.StoryRetired) -> None:
        """A provisional story the final clustering replaced: it stops counting, and the store removes it."""
        cluster, synth = self.stages[S.STAGE_CLUSTER], self.stages[S.STAGE_SYNTHESIZE]
        story = self._written.pop(retired.cluster_key, None)
        cluster.done -= self._cluster_sizes.pop(retired.cluster_key, 0)
        synth.total -= 1
        if story is not None:
            synth.done -= 1
            synth.failed -= int(story.fallback)
        self.retired.append(
            store_pb2.RetiredStory(cluster_key=retired.cluster_key, replaced_by=retired.replaced_by)
        )

    async def _write_stories(self, queue: asyncio.Queue[common_pb2.Story | None]) -> None:
        async def chunks() -> AsyncIterator[store_pb2.PutStoriesRequest]:
            async for chunk in queue_batches(queue, STORY_CHUNK, CHUNK_LINGER):
                yield store_pb2.PutStoriesRequest(stories=chunk, lease_token=self.token)

        reply = await self._put("store.PutStories", self.c.store.PutStories, chunks())
        for rejected in reply.result.rejected:
            self.warnings.append(f"story {rejected.key} not stored: {rejected.reason}")

    def _dog(self, stream: str) -> Watchdog:
        """A watchdog of one of the attempt's pipeline streams, reporting its progress to the attempt."""
        return Watchdog(stream, self._watchdog, activity=self._activity)

    async def _put(
        self,
        stream: str,
        call: Callable[[AsyncIterator[Req]], Awaitable[Rep]],
        requests: AsyncIterator[Req],
    ) -> Rep:
        """A client-streaming write to the store, watched: its reply, or the attempt stops (an RPC error
        is RpcFailedError; a write the store fenced out, LeaseLostError)."""
        dog = self._dog(stream)
        try:
            reply = await guarded(dog, call(requests_watched(requests, dog)))
        except grpc.aio.AioRpcError as exc:
            raise failed(stream, exc) from None
        fenced_out(reply)
        return reply
