"""Fast handover on real services, with a second synthesizer replica: it resumes a job whose worker was
killed (kill -9) once the lease runs out and reuses the stories already stored; a replica told to stop
(SIGTERM) gives its job back at once; a cancel stops the worker's LLM calls within a second."""

from __future__ import annotations

import asyncio
import re
import signal
from dataclasses import dataclass

import pytest
from storywire.v1 import common_pb2, store_pb2

from services.synthesizer.settings import SynthesizerSettings
from tests.e2e.conftest import extra_synthesizer, job_stories, stories_stored, submit
from tests.faults.conftest import (
    Baseline,
    Deployment,
    JobRun,
    JobWatch,
    Store,
    fault_row,
    run_job,
    simulator,
)
from tests.faults.record import record
from tests.helpers import ServiceProcess, wait_serving

pytestmark = pytest.mark.integration
LEASE = SynthesizerSettings.model_fields["worker_lease_seconds"].default  # the default, not overridden
#: two LLM calls at a time of 0.5 s: the 14 clusters take several seconds, so a replica can be stopped
#: after the second story with most of the job still to do
SIM_SETTINGS = {"slots": 2, "latency": 0.5}


def snapshot(event: store_pb2.WatchJobResponse, attempt: int) -> bool:
    return event.WhichOneof("event") == "snapshot" and event.snapshot.attempts == attempt


def claimed(event: store_pb2.WatchJobResponse) -> bool:
    """The snapshot of a claim: the only move back to fetching (a claim after a handover keeps the
    attempt number, so the number does not tell)."""
    return event.WhichOneof("event") == "snapshot" and event.snapshot.state == common_pb2.JOB_STATE_FETCHING


async def logged(process: ServiceProcess, pattern: str, timeout: float = 30.0) -> re.Match[str]:
    """The first match of ``pattern`` in the process's log once it is written: the watcher can see the
    job end before its worker logs it."""
    try:
        async with asyncio.timeout(timeout):
            while (found := re.search(pattern, process.output())) is None:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(process.output()[-3000:]) from None
    return found


@dataclass(frozen=True)
class Handover:
    run: JobRun
    resumed_s: float  # from the signal to the second claim
    kept: int  # stories stored before the signal whose clusters are final
    calls_after: int  # LLM calls from the signal to the end
    replica: ServiceProcess


async def stop_first_then_resume(deployment: Deployment, store: Store, sig: int) -> Handover:
    """Run a job on the deployment's synthesizer, start a second replica, signal the first after two
    stories, and measure the handover. The second replica becomes the deployment's synthesizer."""
    first = deployment.procs["synthesizer"]
    replicas: list[ServiceProcess] = []
    before: set[str] = set()  # cluster keys of the stories stored before the signal
    calls_at_signal: list[int] = []

    async def fault(watch: JobWatch) -> float:
        await watch.wait_for(lambda e: snapshot(e, 1))  # claimed by the only replica there is
        replicas.append(await extra_synthesizer(deployment.env))  # it waits for a runnable job meanwhile
        await watch.stories(2)
        before.update(e.story.cluster_key for _, e in watch.events if e.WhichOneof("event") == "story")
        signalled = asyncio.get_running_loop().time()
        first.signal(sig)
        calls_at_signal.append(deployment.sim.stats.calls)
        return signalled

    try:
        run, _ = await run_job(deployment, store, fault=fault)
    finally:
        if replicas:
            deployment.procs["synthesizer"] = replicas[0]
        else:
            await wait_serving(deployment.start("synthesizer").address)
    signalled = run.watch.fault_at
    assert signalled is not None
    resumed = next((at for at, e in run.watch.events if at > signalled and claimed(e)), None)
    assert resumed is not None, f"no second claim: {run.watch.warnings}"
    return Handover(
        run, resumed - signalled, len(before & run.cluster_keys),
        deployment.sim.stats.calls - calls_at_signal[0], replicas[0],
    )  # fmt: skip


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_a_second_replica_resumes_the_job_and_reuses_its_stories(
    deployment: Deployment, store: Store, baseline: Baseline, sig: int
) -> None:
    first = deployment.procs["synthesizer"]
    handover = await stop_first_then_resume(deployment, store, sig)
    run = handover.run
    name = "kill -9" if sig == signal.SIGKILL else "SIGTERM"
    row = record(
        fault_row(
            f"{name} synthesizer mid-job, second replica running", baseline, run, handover.resumed_s,
            f"claimed again {handover.resumed_s:.2f} s after the signal; "
            f"{handover.kept} stored stories reused",
        )
    )  # fmt: skip
    code, output = await asyncio.to_thread(first.wait, 30)
    assert run.job.state == common_pb2.JOB_STATE_DONE, run.job.error
    # kill -9 used up an attempt; a handover (SIGTERM) is not one
    assert run.job.attempts == (2 if sig == signal.SIGKILL else 1), run.watch.warnings
    assert (row.lost, row.duplicated) == (0, 0), row
    assert len(run.stories) == len(run.cluster_keys) == 14
    assert not any(s.fallback for s in run.stories)
    # the stories stored before the stop whose clusters are final are reused, not rewritten (the rows are
    # unchanged, so the resuming replica's log says it). With early release (the default) a story stored
    # before the stop may be a provisional one that the final clustering retires: it is not reused, since
    # no final cluster has its key.
    found = await logged(handover.replica, r"job done.*reused=(\d+)")
    assert int(found.group(1)) >= handover.kept
    if sig == signal.SIGTERM:
        assert code == 0, output[-3000:]
        assert "job given back" in output, output[-3000:]
    # at most one call per final cluster not reused, plus one per provisional story of the new attempt
    # (at most one per final cluster too)
    assert handover.calls_after <= 2 * 14 - handover.kept, handover
    # kill -9: the lease runs out (renewed every quarter of it); SIGTERM: the job is given back at once
    bound = LEASE + 2.0 if sig == signal.SIGKILL else 5.0  # the goal: another replica within 5 s
    assert handover.resumed_s < bound, (
        f"the second attempt started {handover.resumed_s:.2f} s after the signal"
    )


async def test_a_cancel_stops_llm_calls_within_a_second(deployment: Deployment, store: Store) -> None:
    with simulator(deployment, slots=1, latency=0.5):
        # one call at a time: a worker that noticed the cancel late would start the next one
        job = await submit(store, deployment.urls(), model="sim-cancel-latency", max_concurrency=1)
        await stories_stored(store, job.id)
        await store.CancelJob(store_pb2.CancelJobRequest(job_id=job.id, reason="test"))
        at_cancel = deployment.sim.stats.calls
        await asyncio.sleep(1.0)
        after_one_second = deployment.sim.stats.calls
        await asyncio.sleep(2.0)
        after_three_seconds = deployment.sim.stats.calls
    assert after_one_second - at_cancel <= 1, "at most a call that started as the cancel was sent"
    assert after_three_seconds == after_one_second, "an LLM call started more than 1 s after the cancel"
    done = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert done.state == common_pb2.JOB_STATE_CANCELLED
    assert len(await job_stories(store, job.id)) < 14
