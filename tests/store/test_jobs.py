"""Jobs: validation with precise status codes, the state machine, cancellation and leases."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from storywire.v1 import common_pb2, store_pb2

from tests.factories import make_story, unique
from tests.store.conftest import Store, spec, submit
from tests.store.test_writes import stream_stories

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("job_spec", "message"),
    [
        (common_pb2.JobSpec(), "spec.urls: at least one URL is required"),
        (
            spec("https://ok.example/", "ftp://files.example/x"),
            "spec.urls[1]: scheme 'ftp' is not http or https",
        ),
        (spec("https:///no-host"), "spec.urls[0]: 'https:///no-host' has no host"),
        (spec(similarity_threshold=1.5), "spec.options.similarity_threshold: 1.5 is outside [0.01, 1.0]"),
        (spec(min_articles_per_story=-1), "spec.options.min_articles_per_story: -1 is outside [0, 1000]"),
        (spec(max_concurrency=5000), "spec.options.max_concurrency: 5000 is outside [0, 1024]"),
        (spec(temperature=3.0), "spec.options.temperature: 3.0 is outside [0, 2]"),
    ],
)
async def test_bad_spec_is_invalid_argument_naming_the_field(
    store: Store, job_spec: common_pb2.JobSpec, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.SubmitJob(store_pb2.SubmitJobRequest(spec=job_spec))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == message


async def test_bad_and_unknown_ids(store: Store) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.GetJob(store_pb2.GetJobRequest(job_id="nope"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "job_id: 'nope' is not a UUID"
    unknown = "0b1c3a52-3f39-4f0e-8d58-2b8f1f9d2a10"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.GetJob(store_pb2.GetJobRequest(job_id=unknown))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.GetStory(store_pb2.GetStoryRequest(story_id="missing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.ListStories(store_pb2.ListStoriesRequest(page_token="garbage!"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_submit_get_and_idempotency_key(store: Store) -> None:
    key = unique()
    first = await store.SubmitJob(store_pb2.SubmitJobRequest(spec=spec(), idempotency_key=key))
    assert first.job.state == common_pb2.JOB_STATE_QUEUED
    again = await store.SubmitJob(store_pb2.SubmitJobRequest(spec=spec(), idempotency_key=key))
    assert again.job.id == first.job.id
    got = await store.GetJob(store_pb2.GetJobRequest(job_id=first.job.id))
    assert got.job.spec == spec()


async def test_cancel_is_final(store: Store) -> None:
    job = await submit(store)
    cancelled = await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id, reason="user asked"))
    assert cancelled.job.state == common_pb2.JOB_STATE_CANCELLED
    assert cancelled.job.error == "user asked"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def claim_job(store: Store, job_id: str, worker: str, lease: float = 30, wait: int = 0) -> str:
    """Claim jobs until ``job_id`` comes up (other tests' jobs may be queued first); returns its token."""
    for _ in range(200):
        reply = await store.ClaimJob(
            store_pb2.ClaimJobRequest(
                worker_id=worker, lease=Duration(seconds=int(lease), nanos=int(lease % 1 * 1e9)),
                wait_time=Duration(seconds=wait),
            )
        )  # fmt: skip
        assert reply.HasField("job"), "job never became claimable"
        if reply.job.id == job_id:
            return reply.lease_token
        # someone else's leftover: finish it so it stops competing
        await store.UpdateJob(
            store_pb2.UpdateJobRequest(
                job_id=reply.job.id,
                lease_token=reply.lease_token,
                state=common_pb2.JOB_STATE_FAILED,
                error="test cleanup",
            )
        )
    raise AssertionError("job not claimed")


async def test_state_machine_and_leases(store: Store) -> None:
    job = await submit(store)
    token = await claim_job(store, job.id, "worker-a", lease=0.5)

    def update(tok: str, state: int = 0, **kw: object) -> store_pb2.UpdateJobRequest:
        return store_pb2.UpdateJobRequest(job_id=job.id, lease_token=tok, state=state, **kw)  # type: ignore[arg-type]

    reply = await store.UpdateJob(update(token, common_pb2.JOB_STATE_SYNTHESIZING))
    assert reply.job.state == common_pb2.JOB_STATE_SYNTHESIZING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.UpdateJob(update(token, common_pb2.JOB_STATE_FETCHING))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot go back from synthesizing to fetching" in (info.value.details() or "")

    # the lease expires: another worker resumes the job, and the first worker's token is dead
    await asyncio.sleep(0.7)
    token_b = await claim_job(store, job.id, "worker-b")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.UpdateJob(update(token))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "lease lost" in (info.value.details() or "")

    progress = common_pb2.StageProgress(stage=common_pb2.STAGE_FETCH, done=3, total=5, failed=1)
    reply = await store.UpdateJob(
        update(token_b, common_pb2.JOB_STATE_DONE, stages=[progress], trace_id="ab" * 16)
    )
    assert reply.job.state == common_pb2.JOB_STATE_DONE
    assert reply.job.attempts == 2
    assert reply.job.trace_id == "ab" * 16
    fetch = reply.job.stages[0]
    assert (fetch.stage, fetch.done, fetch.total, fetch.failed) == (common_pb2.STAGE_FETCH, 3, 5, 1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.UpdateJob(update(token_b, common_pb2.JOB_STATE_FAILED))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancel_reaches_the_worker(store: Store) -> None:
    job = await submit(store)
    token = await claim_job(store, job.id, "worker-c")
    await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id))
    reply = await store.UpdateJob(store_pb2.UpdateJobRequest(job_id=job.id, lease_token=token))
    assert reply.cancel_requested is True


async def test_claim_waits_for_a_submission(store: Store) -> None:
    # drain whatever is queued, then wait for a job that is submitted while we wait
    while (await store.ClaimJob(store_pb2.ClaimJobRequest(worker_id="drain"))).HasField("job"):
        pass

    async def later() -> common_pb2.Job:
        await asyncio.sleep(0.3)
        return await submit(store)

    submitter = asyncio.create_task(later())
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await store.ClaimJob(
        store_pb2.ClaimJobRequest(worker_id="waiter", wait_time=Duration(seconds=10))
    )
    waited = loop.time() - started
    job = await submitter
    assert reply.job.id == job.id
    assert waited < 5, "the claim should be woken by the submission, not by its timeout"


async def test_list_jobs_pages(store: Store) -> None:
    for _ in range(5):
        await submit(store)
    seen: list[str] = []
    token = ""
    while True:
        page = await store.ListJobs(store_pb2.ListJobsRequest(page_size=2, page_token=token))
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 5


async def test_done_with_final_keys_retires_stale_stories(store: Store) -> None:
    """A resumed attempt that clustered differently: stories under keys it did not produce are removed."""
    job = await submit(store)
    token = await claim_job(store, job.id, "worker-final")
    await store.PutStories(stream_stories([make_story(job.id, k) for k in ("k1", "k2", "stale")]))
    reply = await store.UpdateJob(
        store_pb2.UpdateJobRequest(
            job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE, final_cluster_keys=["k1", "k2"]
        )
    )
    listed = await store.ListStories(store_pb2.ListStoriesRequest(job_id=job.id))
    assert sorted(s.cluster_key for s in listed.stories) == ["k1", "k2"]
    stored = next(s for s in reply.job.stages if s.stage == common_pb2.STAGE_STORE)
    assert (stored.done, stored.total) == (2, 2)


async def test_a_job_past_its_attempts_is_failed_by_the_store_not_claimed_again(store: Store) -> None:
    """A worker that cannot record a failure (it died, or the store was unreachable) leaves its job to
    the lease; the store hands it out at most WORKER_MAX_ATTEMPTS times (default 3), then fails it with
    the reason, its event in the same transaction."""
    job = await submit(store)
    for attempt in (1, 2):  # two attempts given back after an infrastructure failure
        token = await claim_job(store, job.id, f"worker-{attempt}")
        give_back = store_pb2.UpdateJobRequest(job_id=job.id, lease_token=token, release=True)
        assert (await store.UpdateJob(give_back)).job.state == common_pb2.JOB_STATE_QUEUED
    await claim_job(store, job.id, "worker-3", lease=0.3)  # the third worker dies: its lease runs out
    reply = await store.ClaimJob(
        store_pb2.ClaimJobRequest(worker_id="worker-4", wait_time=Duration(seconds=2))
    )  # woken when the lease expires
    assert reply.job.id != job.id
    ended = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert ended.state == common_pb2.JOB_STATE_FAILED
    assert ended.attempts == 3
    assert ended.error.startswith("after 3 attempts: the last one ended without recording its outcome")
    assert ended.HasField("finished_at")
    events = [e async for e in store.WatchJob(store_pb2.WatchJobRequest(job_id=job.id, after_seq=1))]
    assert events[-1].snapshot.state == common_pb2.JOB_STATE_FAILED, events[-1]
    assert events[-1].snapshot.error == ended.error


def handover(job_id: str, token: str) -> store_pb2.UpdateJobRequest:
    """What a stopping worker sends: the job back at once, as a handover."""
    return store_pb2.UpdateJobRequest(job_id=job_id, lease_token=token, release=True, handover=True)


async def test_handovers_do_not_use_up_a_jobs_attempts(store: Store) -> None:
    """A rolling restart never fails a job: handed back by stopping workers more often than
    WORKER_MAX_ATTEMPTS (3), the job is still claimed, under the same attempt number, and completes."""
    job = await submit(store)
    for n in range(5):
        token = await claim_job(store, job.id, f"stopping-{n}")
        given_back = (await store.UpdateJob(handover(job.id, token))).job
        assert (given_back.state, given_back.attempts) == (common_pb2.JOB_STATE_QUEUED, 0)
    token = await claim_job(store, job.id, "last")
    assert (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job.attempts == 1
    done = store_pb2.UpdateJobRequest(job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE)
    assert (await store.UpdateJob(done)).job.state == common_pb2.JOB_STATE_DONE


async def test_expired_leases_use_up_a_jobs_attempts_and_handovers_do_not(store: Store) -> None:
    """Three attempts whose lease ran out (their worker died), with handovers between them: the store
    fails the job at the next claim, after 3 attempts."""
    job = await submit(store)
    for n in range(3):
        token = await claim_job(store, job.id, f"stopping-{n}", wait=10)  # waits for the last lease to end
        await store.UpdateJob(handover(job.id, token))
        await claim_job(store, job.id, f"dying-{n}", lease=0.3)
    reply = await store.ClaimJob(
        store_pb2.ClaimJobRequest(worker_id="next", wait_time=Duration(seconds=10))
    )  # woken when the lease expires
    assert reply.job.id != job.id
    ended = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert (ended.state, ended.attempts) == (common_pb2.JOB_STATE_FAILED, 3)
    assert ended.error.startswith("after 3 attempts: the last one ended without recording its outcome")
