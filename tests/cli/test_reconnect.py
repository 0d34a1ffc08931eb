"""``storywire run``/``watch`` survive a store restart mid-watch, and give up only on a store that stays
away. Its own module: it restarts the deployment's store."""

from __future__ import annotations

import asyncio
import re
import signal

import pytest
from storywire.v1 import store_pb2

from tests.cli.conftest import Cli, Gate, read_until
from tests.e2e.conftest import Deployment, Store, job_stories, submit
from tests.helpers import wait_serving

pytestmark = pytest.mark.integration


async def restart_store(deployment: Deployment, how: signal.Signals) -> None:
    """SIGTERM (the graceful stop of a rolling update) or SIGKILL (a crash), then the store again on
    the same port."""
    old = deployment.procs["store"]
    if how == signal.SIGTERM:
        await asyncio.to_thread(old.terminate, 30)
    else:
        await asyncio.to_thread(old.stop)
    await wait_serving(deployment.start("store").address, timeout=60)


async def pushed(store: Store, job_id: str, sequence: int) -> None:
    """Until the store has pushed the job's event ``sequence`` to a watcher of its own (the job is
    running, so the store restarts mid-job)."""
    async for event in store.WatchJob(store_pb2.WatchJobRequest(job_id=job_id)):
        if event.sequence >= sequence:
            return


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_run_survives_a_store_restart_mid_watch(
    cli: Cli, deployment: Deployment, store: Store, gate: Gate, how: signal.Signals
) -> None:
    # the job's fetch waits at the gate, so the store restarts while the CLI is watching a running job
    proc = await cli.start("run", "--name", "restart", *deployment.urls(), gate.url)
    head = await read_until(proc.stdout, "submitted")
    job_id = head.split("job ", 1)[1].split()[0]
    await asyncio.wait_for(gate.requested.wait(), 60)
    await asyncio.wait_for(pushed(store, job_id, 2), 60)
    await restart_store(deployment, how)
    gate.release()
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    output, errors = head + out.decode(), err.decode()

    assert proc.returncode == 0, output + errors
    assert "lost the store at" in errors
    assert "reconnecting in" in errors
    resumed = re.search(r"reconnected to the store at \S+; resuming after event (\d+)", errors)
    assert resumed is not None, errors
    # whether it resumes after event 0 (a new snapshot) or after a later one depends on whether the CLI's
    # watch opened before the job's first events (a busy machine may claim the job first); resuming after
    # the last event received is tested in tests/cli/test_backoff.py
    assert "Traceback" not in errors
    final = (await store.GetJob(store_pb2.GetJobRequest(job_id=job_id))).job
    stories = await job_stories(store, job_id)
    assert len(stories) == 14
    assert f"{len(stories)} stories" in output
    for story in stories:
        assert story.id in output
    assert f"Job {job_id} - done" in output
    assert final.attempts >= 1


async def test_watch_gives_up_on_a_store_that_stays_away(
    cli: Cli, deployment: Deployment, store: Store, gate: Gate
) -> None:
    job = await submit(store, [gate.url])
    await asyncio.wait_for(gate.requested.wait(), 60)
    proc = await cli.start("watch", job.id, "--reconnect-for", "3")
    await asyncio.to_thread(deployment.procs["store"].terminate, 30)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await wait_serving(deployment.start("store").address, timeout=60)
    errors = err.decode()
    assert proc.returncode == 3, errors
    assert "reconnecting in" in errors
    assert f"the store service at {deployment.env['STORYWIRE_STORE_ADDRESS']} is unreachable" in errors
    assert "gave up after 3 s of reconnecting" in errors
    await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id))
