"""A job run whose store writes its stories slowly but steadily, at the default settings (20 s stream
watchdog, a 60 s idle limit once the LLM work is over): the write lasts longer than the idle limit, yet
the attempt is not failed as a stall, because every message the store takes is progress. The run is
the real ``JobRun`` (its streams, watchdogs and net); the services it talks to are stand-ins answering
in the test's loop, whose clock fast-forwards (``looptime``), so 90 s of writing cost milliseconds."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from storywire.v1 import common_pb2, fetcher_pb2, store_pb2, synthesizer_pb2
from storywire.v1.synthesizer_pb2 import SynthesizeResponse

from runtime.settings import load_settings
from services.synthesizer.pipeline.coordinator import QueueInput
from services.synthesizer.pipeline.jobrun import STALL_WATCHDOGS, STORY_CHUNK, JobRun
from services.synthesizer.settings import SynthesizerSettings
from tests.synthesizer.test_session import in_loop_time

S = common_pb2
STORIES = 6 * STORY_CHUNK  # six PutStories messages


class SlowStore:
    """Takes one PutStories message every ``pause`` seconds; every other call is answered at once."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.updates: list[store_pb2.UpdateJobRequest] = []
        self.taken: list[tuple[float, int]] = []  # (loop time, stories) of each PutStories message
        self.storing_at = -1.0

    async def UpdateJob(self, request: store_pb2.UpdateJobRequest, **_: Any) -> store_pb2.UpdateJobResponse:
        self.updates.append(request)
        if request.state == S.JOB_STATE_STORING:
            self.storing_at = loop_time()
        return store_pb2.UpdateJobResponse(job=S.Job(id=request.job_id, state=request.state))

    async def PutArticles(self, requests: AsyncIterator[store_pb2.PutArticlesRequest]) -> Any:
        async for _ in requests:
            pass
        return store_pb2.PutArticlesResponse()

    async def PutStories(self, requests: AsyncIterator[store_pb2.PutStoriesRequest]) -> Any:
        async for request in requests:
            self.taken.append((loop_time(), len(request.stories)))
            await asyncio.sleep(self.pause)
        return store_pb2.PutStoriesResponse()

    async def WatchJob(self, request: store_pb2.WatchJobRequest) -> AsyncIterator[store_pb2.WatchJobResponse]:
        while True:  # heartbeats, every second
            await asyncio.sleep(1.0)
            yield store_pb2.WatchJobResponse()


async def fetch(request: fetcher_pb2.FetchRequest, **_: Any) -> AsyncIterator[fetcher_pb2.FetchResponse]:
    articles = [S.Article(id=f"a{i}", url=f"http://127.0.0.1/{i}", title=f"t{i}") for i in range(3)]
    yield fetcher_pb2.FetchResponse(batch=S.ArticleBatch(articles=articles))
    yield fetcher_pb2.FetchResponse(summary=fetcher_pb2.FetchSummary(urls_ok=1, entries_found=3))


class Session:
    """A synthesis that writes ``STORIES`` stories at once, as soon as its input has ended."""

    writer = None
    totals = SimpleNamespace(proto=S.SynthesisTotals())

    async def run(self, articles: AsyncIterator[S.Article]) -> AsyncIterator[SynthesizeResponse]:
        ids = [a.id async for a in articles]
        for i in range(STORIES):
            key = f"c{i}"
            yield SynthesizeResponse(cluster=S.Cluster(key=key, article_ids=ids))
            story = S.Story(cluster_key=key, article_ids=ids, title=f"story {i}")
            yield SynthesizeResponse(story=story)
        summary = synthesizer_pb2.SynthesisSummary(final_cluster_keys=[f"c{i}" for i in range(STORIES)])
        yield SynthesizeResponse(summary=summary)


def loop_time() -> float:
    return asyncio.get_running_loop().time()


def test_a_story_write_slower_than_the_idle_limit_but_steady_ends_done() -> None:
    settings = load_settings(SynthesizerSettings)
    watchdog = settings.worker_stream_watchdog_seconds
    limit = STALL_WATCHDOGS * watchdog
    store = SlowStore(pause=0.75 * watchdog)  # each message well within the watchdog
    engine = SimpleNamespace(session=lambda config: Session(), record_saved=lambda totals: None)
    coordinator: Any = SimpleNamespace(
        settings=settings, store=store, fetcher=SimpleNamespace(Fetch=fetch), engine=engine,
        rpc_timeout=max(settings.worker_lease_seconds / 2, 1.0), stopping=False, articles_in=QueueInput,
    )  # fmt: skip
    job = S.Job(id="00000000-0000-0000-0000-000000000001", attempts=1, spec=S.JobSpec(urls=["http://x/"]))

    async def scenario() -> float:
        await JobRun(coordinator, job, "token").run()
        return loop_time()

    ended = in_loop_time(scenario())
    print(f"stories written for {ended - store.storing_at:.1f} s after STORING, idle limit {limit:g} s")
    states = [u.state for u in store.updates if u.state]
    assert not [u.error for u in store.updates if u.release], "the attempt was given back"
    assert states[-1] == S.JOB_STATE_DONE, states
    assert sum(count for _, count in store.taken) == STORIES
    assert len(store.taken) == STORIES // STORY_CHUNK
    assert store.storing_at >= 0
    assert ended - store.storing_at > limit, "the write outlasted the idle limit"
    times = [at for at, _ in store.taken]
    assert all(later - earlier < watchdog for earlier, later in itertools.pairwise(times))
