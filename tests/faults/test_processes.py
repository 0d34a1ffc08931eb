"""kill -9 and SIGTERM of the fetcher and of the store mid-job, each restarted on its port: the job ends
done with every story of the fault-free run, none twice.

The fetcher is signalled while it streams the job's articles, the store once two stories are stored. The
synthesizer (one replica) survives both: an attempt that fails on infrastructure gives the job back with
its progress (waiting up to 2 s for a store that is away) and the next attempt reuses the stories already
stored. A SIGTERM'd fetcher usually finishes the stream it serves before it exits, so no attempt fails."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import pytest
from storywire.v1 import common_pb2, store_pb2

from tests.faults.conftest import Baseline, Deployment, JobWatch, Restart, Store, fault_row, restart, run_job
from tests.faults.record import record
from tests.helpers import wait_serving

pytestmark = pytest.mark.integration
#: two LLM calls at a time of 0.5 s each: the synthesis of the 14 clusters lasts a few seconds, long
#: enough to stop a service in the middle of it; the corpus answers each request in 0.1 s, so the fetch
#: lasts over a second too
SIM_SETTINGS = {"slots": 2, "latency": 0.5}
CORPUS_LATENCY = 0.1
SIGNALS = [signal.SIGKILL, signal.SIGTERM]
NAMES: dict[int, str] = {signal.SIGKILL: "kill -9", signal.SIGTERM: "SIGTERM"}


def fetching(event: store_pb2.WatchJobResponse) -> bool:
    """Three URLs fetched: the fetcher is in the middle of the job's stream."""
    kind, progress = event.WhichOneof("event"), event.progress
    return kind == "progress" and progress.stage == common_pb2.STAGE_FETCH and progress.done >= 3


async def stopped_and_restarted(
    deployment: Deployment,
    store: Store,
    baseline: Baseline,
    *,
    name: str,
    sig: int,
    when: Callable[[JobWatch], Awaitable[float]],
    case: str,
) -> None:
    """Run the job, signal the ``name`` service once ``when`` returns and start it again on its port: the
    job ends done with every story of the fault-free run, none twice."""
    timing: list[Restart] = []

    async def fault(watch: JobWatch) -> float:
        await when(watch)
        timing.append(await restart(deployment, name, sig))
        return timing[-1].serving

    run, recovery = await run_job(deployment, store, fault=fault)
    exited = f"exited {timing[0].exit_s:.1f} s after the signal, serving again after {timing[0].down_s:.1f} s"
    row = record(fault_row(f"{NAMES[sig]} {case}, restarted", baseline, run, recovery, exited))
    assert run.job.state == common_pb2.JOB_STATE_DONE, run.job.error
    assert (row.lost, row.duplicated) == (0, 0), row


@pytest.mark.parametrize("sig", SIGNALS, ids=["kill-9", "sigterm"])
async def test_fetcher_stopped_mid_fetch_and_restarted(
    deployment: Deployment, store: Store, baseline: Baseline, sig: int
) -> None:
    await stopped_and_restarted(
        deployment, store, baseline, name="fetcher", sig=sig,
        when=lambda watch: watch.wait_for(fetching), case="fetcher mid-fetch",
    )  # fmt: skip


@pytest.mark.parametrize("sig", SIGNALS, ids=["kill-9", "sigterm"])
async def test_store_stopped_mid_job_and_restarted_on_its_port(
    deployment: Deployment, store: Store, baseline: Baseline, sig: int
) -> None:
    await stopped_and_restarted(
        deployment, store, baseline, name="store", sig=sig,
        when=lambda watch: watch.stories(2), case="store mid-job",
    )  # fmt: skip


async def test_fetcher_down_when_the_job_starts_is_waited_for(
    deployment: Deployment, store: Store, baseline: Baseline
) -> None:
    """A fetcher away for longer than a job's attempts last (3 attempts, given back after 1 s and 2 s)
    is waited for: the attempt's fetch waits until it serves again instead of using up the attempts (the
    first version of the suite saw a killed fetcher that took 2.8 s to come back use all three)."""
    outage = 5.0
    deployment.procs["fetcher"].stop()  # kill -9 before the job

    async def fault(watch: JobWatch) -> float:
        claimed = await watch.wait_for(
            lambda e: e.WhichOneof("event") == "snapshot" and e.snapshot.attempts > 0
        )
        await asyncio.sleep(outage - (asyncio.get_running_loop().time() - claimed))  # the outage itself
        await wait_serving(deployment.start("fetcher").address, security=deployment.security)
        return asyncio.get_running_loop().time()

    run, recovery = await run_job(deployment, store, fault=fault)
    row = record(fault_row(f"fetcher down for {outage:g} s when the job starts", baseline, run, recovery))
    assert run.job.state == common_pb2.JOB_STATE_DONE, run.job.error
    assert run.job.attempts == 1, run.watch.warnings
    assert (row.lost, row.duplicated) == (0, 0), row


async def test_a_job_that_does_not_end_in_time_fails_saying_what_it_is_doing(
    deployment: Deployment, store: Store
) -> None:
    """With no synthesizer the job stays queued: run_job's failure says so, with the services' exit codes,
    the simulator's settings and counters and the synthesizer's last log lines (what a stalled job in a
    full run needs to be explained after the fact)."""
    synthesizer = deployment.procs["synthesizer"]
    await asyncio.to_thread(synthesizer.terminate, 15)
    try:
        with pytest.raises(pytest.fail.Exception) as failed:
            await run_job(deployment, store, timeout=2.0)
    finally:
        queued = store_pb2.ListJobsRequest(states=[common_pb2.JOB_STATE_QUEUED])
        for job in (await store.ListJobs(queued)).jobs:
            await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id, reason="test over"))
        await wait_serving(deployment.start("synthesizer").address, security=deployment.security)
    message = str(failed.value)
    assert "jobs not ended after 2 s: {'JOB_STATE_QUEUED': 1}" in message, message
    assert "'synthesizer': 0" in message, message  # its exit code: it was stopped, the job waits for one
    assert f"slots={SIM_SETTINGS['slots']}, " in message, message
    assert str(deployment.sim.stats) in message, message
    assert synthesizer.output()[-300:] in message, message
    watched = message.partition("last events watched: ")[2]
    assert watched.endswith("'JOB_STATE_QUEUED')]"), message  # the watch's snapshot and nothing after it
