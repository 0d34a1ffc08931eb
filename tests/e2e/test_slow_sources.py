"""Nothing lost when sources are slow or jobs are cancelled, on real services with DEFAULT release
settings: a feed 3 s late, an event whose articles arrive 3 s apart, and cancelled jobs followed by
the same job again."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest
from storywire.v1 import common_pb2, store_pb2

from tests.e2e import devnews
from tests.e2e.conftest import Deployment, Store, cache_stats, job_stories, simulator, submit
from tests.synthesizer.sessionkit import until

pytestmark = pytest.mark.integration
S = common_pb2
#: dev-news feed items carry only a first paragraph; with the pages, the events cluster as labelled
FULL_TEXT: dict[str, object] = {"fetch_full_text": True, "model": "sim-full-text"}


@dataclass
class Run:
    job: common_pb2.Job
    stories: list[common_pb2.Story]
    story_events: int  # stories stored over the job's life, provisional ones included
    first_story_at: float  # time.monotonic() when the watcher saw the first stored story

    def final(self, urls: dict[str, str]) -> set[frozenset[str]]:
        """The final stories as sets of dev-news article ids (ids that do not depend on the port)."""
        return {frozenset(devnews.devnews_id(urls[a]) for a in s.article_ids) for s in self.stories}


async def run_job(store: Store, urls: list[str], **options: object) -> Run:
    job = await submit(store, urls, **options)
    first, events = 0.0, 0
    async with asyncio.timeout(120):
        async for event in store.WatchJob(store_pb2.WatchJobRequest(job_id=job.id)):
            if event.WhichOneof("event") == "story":
                events += 1
                first = first or time.monotonic()
    done = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert done.state == S.JOB_STATE_DONE, done.error
    return Run(done, await job_stories(store, job.id), events, first)


async def article_urls(store: Store, runs: list[Run]) -> dict[str, str]:
    ids = sorted({a for r in runs for s in r.stories for a in s.article_ids})
    reply = await store.BatchGetArticles(store_pb2.BatchGetArticlesRequest(article_ids=ids))
    assert not reply.missing_ids
    return {a.id: a.url for a in reply.articles}


def check_accounting(run: Run) -> None:
    """Every article the synthesis received is in exactly one final story or left out (counted with its
    reason by the synthesis summary: a cluster below min_articles_per_story)."""
    in_stories = [a for s in run.stories for a in s.article_ids]
    assert len(in_stories) == len(set(in_stories)), "an article is in two final stories"
    cluster = next(st for st in run.job.stages if st.stage == S.STAGE_CLUSTER)
    assert cluster.total == len(devnews.labels()), "every dev-news article reached the synthesis"
    assert len(in_stories) + cluster.failed == cluster.total


async def test_a_feed_3_s_late_loses_nothing_and_the_first_story_comes_before_it(store: Store) -> None:
    """3 s, not 1.5 s: with full text on (the default) the other five feeds' 86 pages are read first,
    8 at a time from the one loopback host, which takes longer than 1.5 s on 2 busy cores; the loss
    checks hold at any delay (tests/e2e/test_slow_source.py has the sample corpus 1.5 s late)."""
    with devnews.serve() as server:
        baseline = await run_job(store, server.feed_urls())
    slow = 6  # the biggest feed (27 of the 113 articles)
    with devnews.serve((slow, 3.0), port=server.port) as server:
        delayed = await run_job(store, server.feed_urls())
        answered = server.answered[slow]
    urls = await article_urls(store, [baseline, delayed])
    check_accounting(baseline)
    check_accounting(delayed)
    assert delayed.final(urls) == baseline.final(urls), "the same final stories as without the delay"
    assert delayed.first_story_at < answered, "the first story must be stored before the slow feed answers"
    totals = delayed.job.totals
    print(f"\nfirst story {answered - delayed.first_story_at:.2f} s before the slow feed answered; "
          f"{len(delayed.stories)} final stories, {delayed.story_events} stored over the job "
          f"(LLM calls {totals.llm_calls}, cache hits {totals.cache_hits})")  # fmt: skip


async def test_an_event_whose_articles_arrive_3_s_apart_ends_in_one_story(store: Store) -> None:
    slow = 2
    labels, feeds = devnews.labels(), devnews.feed_of()
    with devnews.serve() as server:
        baseline = await run_job(store, server.feed_urls(), **FULL_TEXT)
    with devnews.serve((slow, 3.0), port=server.port) as server:
        delayed = await run_job(store, server.feed_urls(), **FULL_TEXT)
    urls = await article_urls(store, [baseline, delayed])
    check_accounting(delayed)
    final, expected = delayed.final(urls), baseline.final(urls)
    assert final == expected
    # stories of one event with articles in the slow feed and in the others: in the delayed run their
    # articles arrived 3 s apart, and they are still one story
    across = [
        s for s in expected if len({feeds[a] == slow for a in s}) == 2 and len({labels[a] for a in s}) == 1
    ]
    assert across, "no story of one event spans the slow feed and the others"
    for story in across:
        assert story in final, f"{labels[next(iter(story))]} split by a 3 s gap"
    assert delayed.story_events > len(delayed.stories), "provisional stories were written, then replaced"


async def test_cancelled_jobs_then_the_same_job_stores_a_story_for_every_cluster(
    deployment: Deployment, store: Store
) -> None:
    with simulator(deployment, latency=1.0):  # LLM calls in flight when the jobs are cancelled
        cancelled = [await submit(store, deployment.urls(), model="sim-cancel") for _ in range(2)]
        await asyncio.sleep(0.6)  # the scenario of the issue: cancelled 0.6 s after submission
        await until(lambda: deployment.sim.stats.in_service > 0, what="a call at the LLM")
        for job in cancelled:
            await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id))
        rerun = await run_job(store, deployment.urls(), model="sim-cancel")
    assert len(rerun.stories) == 14, "a story for every cluster"
    assert len({s.cluster_key for s in rerun.stories}) == 14
    assert not any(s.fallback for s in rerun.stories)
    synth = next(st for st in rerun.job.stages if st.stage == S.STAGE_SYNTHESIZE)
    assert synth.done >= 14
    stats = await cache_stats(deployment)
    assert stats.in_flight == 0, "a cancelled job's LLM permits must come back"
