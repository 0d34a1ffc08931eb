"""WatchJob with after_seq: a client that lost its stream resumes after the last event it received;
and a job that ends has every stage finished (the store stage too)."""

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
HEARTBEAT = Duration(nanos=200_000_000)


async def watch(store: Store, job_id: str, after_seq: int = 0) -> list[store_pb2.WatchJobResponse]:
    request = store_pb2.WatchJobRequest(job_id=job_id, heartbeat_interval=HEARTBEAT, after_seq=after_seq)
    return [e async for e in store.WatchJob(request) if not e.heartbeat]


async def finished_job(store: Store) -> str:
    """A job with a claim, two story batches and DONE: a log of snapshots, stories and progress."""
    job = await submit(store)
    token = await claim_job(store, job.id, "resume-worker")
    update = store_pb2.UpdateJobRequest(job_id=job.id, lease_token=token)
    update.state = common_pb2.JOB_STATE_SYNTHESIZING
    await store.UpdateJob(update)
    for batch in range(2):
        await store.PutStories(stream_stories([make_story(job.id, f"r{batch}-{i}") for i in range(3)]))
    update.state = common_pb2.JOB_STATE_DONE
    await store.UpdateJob(update)
    return job.id


async def test_resume_sends_exactly_the_events_after_the_last_one_received(store: Store) -> None:
    job_id = await finished_job(store)
    full = await asyncio.wait_for(watch(store, job_id), 10)  # a new watch of an ended job: the snapshot
    assert [e.WhichOneof("event") for e in full] == ["snapshot"]
    log = await asyncio.wait_for(watch(store, job_id, after_seq=1), 10)  # everything after the submission
    seqs = [e.sequence for e in log]
    assert seqs == list(range(2, seqs[-1] + 1))
    assert log[-1].snapshot.state == common_pb2.JOB_STATE_DONE

    for cut in range(1, len(log)):  # a stream lost after any event resumes with the rest, nothing else
        resumed = await asyncio.wait_for(watch(store, job_id, after_seq=log[cut - 1].sequence), 10)
        assert [e.SerializeToString() for e in resumed] == [e.SerializeToString() for e in log[cut:]]


async def test_resume_after_the_final_event_gets_the_final_snapshot(store: Store) -> None:
    job_id = await finished_job(store)
    last = (await asyncio.wait_for(watch(store, job_id, after_seq=1), 10))[-1].sequence
    events = await asyncio.wait_for(watch(store, job_id, after_seq=last), 10)
    assert len(events) == 1
    assert events[0].snapshot.state == common_pb2.JOB_STATE_DONE
    beyond = await asyncio.wait_for(watch(store, job_id, after_seq=last + 100), 10)  # unknown: a new watch
    assert [e.WhichOneof("event") for e in beyond] == ["snapshot"]


async def test_resume_of_a_running_job_continues_live(store: Store) -> None:
    job = await submit(store)
    token = await claim_job(store, job.id, "resume-live")
    first = await asyncio.wait_for(watch_until(store, job.id, after_seq=1, count=1), 10)
    assert first[0].snapshot.state == common_pb2.JOB_STATE_FETCHING  # the claim's event
    live = asyncio.create_task(watch(store, job.id, after_seq=first[0].sequence))
    await store.PutStories(stream_stories([make_story(job.id, "live-0")]))
    await store.UpdateJob(
        store_pb2.UpdateJobRequest(job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE)
    )
    events = await asyncio.wait_for(live, 10)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "story"
    assert kinds[-1] == "snapshot"
    assert events[0].sequence == first[0].sequence + 1


async def watch_until(
    store: Store, job_id: str, after_seq: int, count: int
) -> list[store_pb2.WatchJobResponse]:
    request = store_pb2.WatchJobRequest(job_id=job_id, heartbeat_interval=HEARTBEAT, after_seq=after_seq)
    events = []
    async for event in store.WatchJob(request):
        if not event.heartbeat:
            events.append(event)
        if len(events) == count:
            break
    return events


async def test_an_ended_job_has_every_started_stage_finished(store: Store) -> None:
    done = await store.GetJob(store_pb2.GetJobRequest(job_id=await finished_job(store)))
    cancelled = await submit(store)
    token = await claim_job(store, cancelled.id, "resume-cancel")
    progress = common_pb2.StageProgress(stage=common_pb2.STAGE_FETCH, done=1, total=3)
    await store.UpdateJob(
        store_pb2.UpdateJobRequest(job_id=cancelled.id, lease_token=token, stages=[progress])
    )
    await store.CancelJob(store_pb2.CancelJobRequest(job_id=cancelled.id))
    stopped = await store.GetJob(store_pb2.GetJobRequest(job_id=cancelled.id))
    for job in (done.job, stopped.job):
        assert job.stages
        for stage in job.stages:
            assert stage.HasField("finished_at"), (job.state, stage)
            assert stage.finished_at.ToDatetime() <= job.finished_at.ToDatetime()
    store_stage = next(s for s in done.job.stages if s.stage == common_pb2.STAGE_STORE)
    assert store_stage.done == 6
