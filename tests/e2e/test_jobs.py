"""Whole jobs over real gRPC, PostgreSQL, Redis and the LLM simulator."""

from __future__ import annotations

import asyncio
import signal

import pytest
from storywire.v1 import common_pb2, store_pb2

from tests.e2e.conftest import (
    Deployment,
    Store,
    events_until_end,
    job_stories,
    simulator,
    stories_stored,
    submit,
)
from tests.helpers import wait_serving

pytestmark = pytest.mark.integration


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def test_job_runs_end_to_end_and_a_rerun_makes_no_llm_call(
    deployment: Deployment, store: Store
) -> None:
    job = await submit(store, deployment.urls())
    events = await asyncio.wait_for(events_until_end(store, job.id), 60)

    # watcher: snapshot first, sequences strictly increasing, stories announced, done last
    assert events[0].WhichOneof("event") == "snapshot"
    seqs = [e.sequence for e in events[1:]]
    assert seqs == sorted(seqs)
    assert len(seqs) == len(set(seqs))
    assert events[-1].snapshot.state == common_pb2.JOB_STATE_DONE
    states = [e.snapshot.state for e in events if e.WhichOneof("event") == "snapshot"]
    assert common_pb2.JOB_STATE_SYNTHESIZING in states
    # 14 final stories; with early release (the default) a pause in the input may add provisional ones
    stored = sum(1 for e in events if e.WhichOneof("event") == "story")
    assert stored >= 14

    stories = await job_stories(store, job.id)
    assert len(stories) == 14
    assert len({s.cluster_key for s in stories}) == 14
    labels = deployment.labels()
    for story in stories:
        reply = await store.BatchGetArticles(store_pb2.BatchGetArticlesRequest(article_ids=story.article_ids))
        assert reply.missing_ids == []
        events_covered = {labels[path_of(a.url)] for a in reply.articles}
        assert len(events_covered) == 1, f"story {story.title!r} mixes events {events_covered}"
    final = events[-1].snapshot
    assert final.totals.llm_calls == stored  # one call per story written, provisional ones included
    assert final.trace_id
    calls = deployment.sim.stats.completed

    rerun = await submit(store, deployment.urls())
    await asyncio.wait_for(events_until_end(store, rerun.id), 60)
    done = (await store.GetJob(store_pb2.GetJobRequest(job_id=rerun.id))).job
    assert done.state == common_pb2.JOB_STATE_DONE
    again = await job_stories(store, rerun.id)
    assert len(again) == 14
    assert all(s.cache_hit for s in again), "the rerun's final stories must all come from the cache"
    # LLM calls only for provisional stories of clusters not seen before (none without a pause)
    assert deployment.sim.stats.completed - calls == done.totals.llm_calls
    assert done.totals.cache_hits >= 14


async def test_kill_9_synthesizer_mid_job_then_restart(deployment: Deployment, store: Store) -> None:
    with simulator(deployment, slots=2, latency=1.0):  # 14 clusters now take about 7 s
        # a model name not used before, so nothing comes from the cache on the first attempt
        job = await submit(store, deployment.urls(), model="sim-kill")
        await stories_stored(store, job.id, 2)
        deployment.procs["synthesizer"].signal(signal.SIGKILL)
        deployment.procs["synthesizer"].wait(timeout=10)
        await wait_serving(deployment.start("synthesizer").address)
        await asyncio.wait_for(events_until_end(store, job.id), 90)
    done = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert done.state == common_pb2.JOB_STATE_DONE, done.error
    assert done.attempts == 2
    stories = await job_stories(store, job.id)
    assert len(stories) == 14
    assert len({s.cluster_key for s in stories}) == 14
    assert not any(s.fallback for s in stories)


async def test_cancel_stops_the_job(deployment: Deployment, store: Store) -> None:
    with simulator(deployment, slots=1, latency=1.0):
        job = await submit(store, deployment.urls(), model="sim-cancel")
        await stories_stored(store, job.id)
        await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id, reason="test"))
        calls_at_cancel = deployment.sim.stats.calls
        await asyncio.sleep(3)
        calls_after = deployment.sim.stats.calls  # before the simulator's counters are reset
    done = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert done.state == common_pb2.JOB_STATE_CANCELLED
    assert len(await job_stories(store, job.id)) < 14
    # at most the calls already in flight (and those admitted in the next progress round) finish
    assert calls_after - calls_at_cancel <= 2
