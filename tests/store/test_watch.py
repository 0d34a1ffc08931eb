"""WatchJob: snapshot first, every event in order, many watchers, late watchers, ends with the job."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf.duration_pb2 import Duration
from storywire.v1 import common_pb2, store_pb2

from tests.factories import make_story
from tests.store.conftest import Store, submit
from tests.store.test_jobs import claim_job
from tests.store.test_writes import stream_stories

pytestmark = pytest.mark.integration


async def collect(store: Store, job_id: str) -> list[store_pb2.WatchJobResponse]:
    events: list[store_pb2.WatchJobResponse] = []
    call = store.WatchJob(
        store_pb2.WatchJobRequest(job_id=job_id, heartbeat_interval=Duration(nanos=200_000_000))
    )
    async for event in call:
        events.append(event)
    return events


async def test_watchers_see_every_story_in_order_and_the_end(
    store: Store,
) -> None:
    job = await submit(store)
    watchers = [asyncio.create_task(collect(store, job.id)) for _ in range(5)]
    await asyncio.sleep(0.3)
    token = await claim_job(store, job.id, "watch-worker")
    await store.UpdateJob(
        store_pb2.UpdateJobRequest(job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_SYNTHESIZING)
    )
    for batch in range(3):
        stories = [make_story(job.id, f"c{batch:02d}-{i:02d}") for i in range(10)]
        await store.PutStories(stream_stories(stories))
    late_mid = await asyncio.wait_for(
        anext(aiter(store.WatchJob(store_pb2.WatchJobRequest(job_id=job.id)))), 5
    )
    await store.UpdateJob(
        store_pb2.UpdateJobRequest(job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE)
    )
    results = await asyncio.wait_for(asyncio.gather(*watchers), 20)

    # a watcher that joins mid-job gets the current state first
    assert late_mid.snapshot.state == common_pb2.JOB_STATE_SYNTHESIZING
    store_stage = [s for s in late_mid.snapshot.stages if s.stage == common_pb2.STAGE_STORE]
    assert store_stage[0].done == 30

    for events in results:
        assert events[0].snapshot.id == job.id
        real = [e for e in events if not e.heartbeat and e.sequence > 0]
        seqs = [e.sequence for e in real]
        assert seqs == sorted(seqs)
        assert len(seqs) == len(set(seqs))
        stored_keys = [e.story.cluster_key for e in real if e.WhichOneof("event") == "story"]
        assert stored_keys == [f"c{b:02d}-{i:02d}" for b in range(3) for i in range(10)]
        progress = [e.progress.done for e in real if e.WhichOneof("event") == "progress"]
        assert progress == [10, 20, 30]
        assert events[-1].snapshot.state == common_pb2.JOB_STATE_DONE
    # every watcher saw the same sequence of events
    assert len({tuple(e.SerializeToString() for e in ev if not e.heartbeat) for ev in results}) == 1


async def test_late_watcher_of_a_finished_job_gets_the_final_state(
    store: Store,
) -> None:
    job = await submit(store)
    await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id))
    events = await asyncio.wait_for(collect(store, job.id), 5)
    assert len(events) == 1
    assert events[0].snapshot.state == common_pb2.JOB_STATE_CANCELLED


async def test_idle_watcher_gets_heartbeats(store: Store) -> None:
    job = await submit(store)
    task = asyncio.create_task(collect(store, job.id))
    await asyncio.sleep(0.9)
    await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id))
    events = await asyncio.wait_for(task, 5)
    assert sum(1 for e in events if e.heartbeat) >= 2
    assert events[-1].snapshot.state == common_pb2.JOB_STATE_CANCELLED
