"""A store that accepts a PutStories stream and then stops reading it: the attempt fails within the
watchdog time with a reason that names the stream, the job is given back and completes once the store
reads again, or fails with that reason after the last attempt."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from storywire.v1 import common_pb2, store_pb2

from tests.e2e.conftest import Deployment, Store, events_until_end, job_stories, submit, synthesizer_replaced
from tests.e2e.proxy import StoreProxy

pytestmark = pytest.mark.integration
WATCHDOG = 3.0  # seconds; the default (20 s) has its own unit test in tests/pipeline/test_watchdog.py


@pytest.fixture
async def behind_proxy(deployment: Deployment) -> AsyncIterator[StoreProxy]:
    """The deployment's synthesizer replaced by one that reaches the store through the proxy."""
    proxy = await StoreProxy(deployment.env["STORYWIRE_STORE_ADDRESS"]).start()
    env = {
        **deployment.env,
        "STORYWIRE_STORE_ADDRESS": proxy.address,
        "STORYWIRE_WORKER_STREAM_WATCHDOG_SECONDS": str(WATCHDOG),
    }
    try:
        async with synthesizer_replaced(deployment, env):
            yield proxy
    finally:
        await proxy.stop()


def stalls(events: list[store_pb2.WatchJobResponse]) -> list[float]:
    """The idle time each watchdog report gave for a stalled PutStories stream."""
    found = [re.search(r"store\.PutStories: no progress for ([\d.]+) s", e.warning) for e in events]
    return [float(m.group(1)) for m in found if m]


async def test_a_hung_story_stream_fails_the_attempt_and_the_job_is_retried(
    deployment: Deployment, store: Store, behind_proxy: StoreProxy
) -> None:
    behind_proxy.hang_put_stories = 1  # the first attempt's stream hangs, the second one's is read
    job = await submit(store, deployment.urls(), model="sim-hung-once")
    events = await asyncio.wait_for(events_until_end(store, job.id), 120)
    done = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert done.state == common_pb2.JOB_STATE_DONE, done.error
    assert (done.attempts, behind_proxy.hung) == (2, 1)
    assert len(await job_stories(store, job.id)) == 14
    idle = stalls(events)
    assert len(idle) == 1, [e.warning for e in events if e.warning]
    assert WATCHDOG <= idle[0] < WATCHDOG + 2, "the attempt fails within the watchdog time"
    # given back at once: the next attempt starts after the 1 s retry delay, not after a lease
    given_back = next(e.time.ToDatetime() for e in events if "gave the job back" in e.warning)
    restarted = next(e.time.ToDatetime() for e in events if e.snapshot.attempts == 2)
    handover = (restarted - given_back).total_seconds()
    print(f"hung PutStories: next attempt {handover:.2f} s after the stalled one gave the job back")
    assert handover < 4


async def test_a_store_that_never_reads_fails_the_job_with_the_reason(
    deployment: Deployment, store: Store, behind_proxy: StoreProxy
) -> None:
    behind_proxy.hang_put_stories = -1
    job = await submit(store, deployment.urls(), model="sim-hung-always")
    events = await asyncio.wait_for(events_until_end(store, job.id), 180)
    done = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert done.state == common_pb2.JOB_STATE_FAILED
    assert done.attempts == 3  # STORYWIRE_WORKER_MAX_ATTEMPTS's default
    assert done.error.startswith("after 3 attempts: store.PutStories: no progress for "), done.error
    assert len(stalls(events)) == 2  # the first two attempts gave the job back; the third failed it
