"""A job run whose store write is refused for its lease (the job was claimed again by another worker) ends
as a run that lost its lease: it neither fails the job, nor gives it back, nor counts what was refused as
failed; against a real store server on loopback."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from storywire.v1 import common_pb2, store_pb2

from services.synthesizer.pipeline.jobrun import JobRun
from services.synthesizer.pipeline.lease import LeaseLostError
from services.synthesizer.pipeline.supervise import supervise
from tests.factories import make_article, make_story, unique
from tests.store.conftest import Store, store, store_server, submit
from tests.store.test_jobs import claim_job

__all__ = ["store", "store_server"]  # the store's fixtures, used here
pytestmark = pytest.mark.integration
LEASE = 0.3  # seconds: the first worker's lease runs out at once, as when it stalls


def coordinator(stub: Store) -> Any:
    settings = SimpleNamespace(worker_stream_watchdog_seconds=20.0, worker_lease_seconds=LEASE)
    return SimpleNamespace(store=stub, settings=settings, rpc_timeout=10.0, stopping=False)


async def stalled_run(stub: Store, worker: str) -> tuple[common_pb2.Job, str]:
    """A job claimed under a short lease: the job as claimed and its token."""
    job = await submit(stub)
    token = await claim_job(stub, job.id, worker, lease=LEASE)
    return (await stub.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job, token


class LateStoryRun(JobRun):
    """A run whose pipeline is its story stream alone; another worker claims the job (this run's lease ran
    out) before the stream writes its one story."""

    async def _pipeline(self) -> None:
        await claim_job(self.c.store, self.job.id, "fence-resumer", wait=10)  # waits for the lease to end
        stories: asyncio.Queue[common_pb2.Story | None] = asyncio.Queue()
        stories.put_nowait(make_story(self.job.id, "late"))
        stories.put_nowait(None)
        writing = asyncio.create_task(self._write_stories(stories), name="write stories")
        await supervise([writing], [], no_limit, self._activity)


def no_limit() -> None:
    return None


async def test_a_run_whose_story_write_is_fenced_out_ends_as_lease_lost(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    job, token = await stalled_run(store, "fence-stalled")
    run = LateStoryRun(coordinator(store), job, token)
    with caplog.at_level(logging.INFO):
        await asyncio.wait_for(run.run(), 60)
    said = [r.getMessage() for r in caplog.records if r.name.endswith("jobrun")]
    lost = [m for m in said if "job lease lost: another worker has it, or it ended (a cancel)" in m]
    # stopped by the refused write itself, not later by an update (which would have carried the refused
    # story as a warning, and tried to finish the job)
    assert len(lost) == 1, said
    assert "the store refused a write under this attempt's lease" in lost[0]
    assert not any("given back" in m or "failed" in m for m in said), said
    assert run.warnings == []  # the refused story is not reported as a story that failed to store
    now = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    # the other worker's attempt, untouched: not released, not failed by the fenced-out run
    assert (now.state, now.attempts) == (common_pb2.JOB_STATE_FETCHING, 2)
    listed = await store.ListStories(store_pb2.ListStoriesRequest(job_id=job.id))
    assert list(listed.stories) == []


async def test_an_article_write_fenced_out_is_a_lost_lease_not_rejected_articles(store: Store) -> None:
    job, token = await stalled_run(store, "fence-stalled-articles")
    await claim_job(store, job.id, "fence-resumer", wait=10)
    run = JobRun(coordinator(store), job, token)
    articles: asyncio.Queue[common_pb2.Article | None] = asyncio.Queue()
    articles.put_nowait(make_article(unique(), 0))
    articles.put_nowait(None)
    with pytest.raises(LeaseLostError, match="the job moved on"):
        await asyncio.wait_for(run._write_articles(articles), 60)
    assert run.ledger.rejected == []  # not left out as rejected in the job's accounting
    assert run.warnings == []
