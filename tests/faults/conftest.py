"""The fault suite's fixtures: a private deployment per module (PostgreSQL, Redis, the sample corpus, the
LLM simulator and the three services, as in tests/e2e), a fault-free baseline job measured once per
module, and the measurement of a job run under a fault as a :class:`FaultRow`.

Every fault case measures "extra LLM calls" and "extra seconds" the same way: the same job (same URLs,
options and simulator settings, a model name of its own so that no cache tier answers for it) run once
without the fault on the same deployment (:func:`baseline`), against the run with the fault
(:func:`run_job`). A module that needs other simulator or corpus settings for all its cases sets them in
``SIM_SETTINGS`` (keywords of ``Simulator.reset``) and ``CORPUS_LATENCY`` (seconds per corpus request);
the deployment applies them before the baseline runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from storywire.v1 import common_pb2, store_pb2

from cli.watch import follow
from runtime.client import open_channel
from tests.e2e.conftest import (
    Deployment,
    Store,
    accounting_invariant,
    cache_stats,
    deploy,
    job_stories,
    simulator,
    store,
    submit,
)
from tests.faults.record import FaultRow
from tests.helpers import ServiceProcess, wait_serving

__all__ = [
    "Baseline",
    "Deployment",
    "JobRun",
    "JobWatch",
    "Restart",
    "Store",
    "accounting_invariant",
    "cache_stats",
    "fault_row",
    "restart",
    "run_job",
    "simulator",
    "stalled",
    "store",
    "tally",
]

#: no fault case may take longer than this for its job (the whole suite must stay under 10 minutes)
JOB_TIMEOUT = 120.0
Event = store_pb2.WatchJobResponse


class JobWatch:
    """Every event of one job's watch with the loop time it arrived, and a way to await one."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.events: list[tuple[float, Event]] = []
        self._arrived = asyncio.Event()
        #: what the fault returned: the loop time from which recovery is measured
        self.fault_at: float | None = None

    def add(self, event: Event) -> None:
        if event.heartbeat:
            return
        self.events.append((asyncio.get_running_loop().time(), event))
        self._arrived.set()
        self._arrived = asyncio.Event()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = JOB_TIMEOUT) -> float:
        """The arrival time of the first event (past or future) that matches; fails after ``timeout``."""

        async def first() -> float:
            seen = 0
            while True:
                for at, event in self.events[seen:]:
                    if predicate(event):
                        return at
                seen = len(self.events)
                await self._arrived.wait()

        return await asyncio.wait_for(first(), timeout)

    async def stories(self, count: int, timeout: float = JOB_TIMEOUT) -> float:
        """When the ``count``-th story event arrived."""
        seen = 0

        def nth(event: Event) -> bool:
            nonlocal seen
            seen += event.WhichOneof("event") == "story"
            return seen >= count

        return await self.wait_for(nth, timeout)

    async def state(self, state: int, timeout: float = JOB_TIMEOUT) -> float:
        """When a snapshot with ``state`` arrived (e.g. ``JOB_STATE_SYNTHESIZING``)."""
        return await self.wait_for(
            lambda e: e.WhichOneof("event") == "snapshot" and e.snapshot.state == state, timeout
        )

    @property
    def warnings(self) -> list[str]:
        return [e.warning for _, e in self.events if e.WhichOneof("event") == "warning"]

    def progress_after(self, at: float) -> float | None:
        """Seconds from ``at`` to the first progress or story event after it (None: none came)."""
        for when, event in self.events:
            if when > at and event.WhichOneof("event") in ("progress", "story"):
                return when - at
        return None


@dataclass(frozen=True)
class JobRun:
    """A job run to its end: its final state, stories, the LLM calls it made and how long it took."""

    job: common_pb2.Job
    stories: list[common_pb2.Story]
    llm_calls: int
    seconds: float
    watch: JobWatch = field(repr=False)

    @property
    def cluster_keys(self) -> set[str]:
        return {s.cluster_key for s in self.stories}

    @property
    def fallbacks(self) -> list[common_pb2.Story]:
        """The stories the LLM did not write (extractive fallbacks)."""
        return [s for s in self.stories if s.fallback]


#: the fault-free run of a module's job
Baseline = JobRun
#: a fault injected during a job: given the job's watch, returns the loop time from which recovery is
#: measured (the fault, or the service coming back), or None
Fault = Callable[[JobWatch], Coroutine[Any, Any, float | None]]


def brief(event: Event) -> str:
    """One watched event in a few words: a snapshot's state, a stage's progress, or its kind."""
    kind = event.WhichOneof("event") or "?"
    if kind == "snapshot":
        return common_pb2.JobState.Name(event.snapshot.state)
    if kind == "progress":
        return f"{common_pb2.Stage.Name(event.progress.stage)} {event.progress.done}/{event.progress.total}"
    return kind


async def stalled(deployment: Deployment, store: Store, job_ids: list[str], timeout: float) -> str:
    """What the jobs that did not end in ``timeout`` seconds are doing, whether the services still run, the
    LLM simulator's settings and counters, the corpus's counters and the services' last log lines."""
    try:
        jobs = [(await store.GetJob(store_pb2.GetJobRequest(job_id=i), timeout=10)).job for i in job_ids]
    except grpc.aio.AioRpcError as exc:
        jobs, states = [], f"the store did not say ({exc.code().name})"
    else:
        states = str(dict(Counter(common_pb2.JobState.Name(j.state) for j in jobs)))
    detail = [
        (j.id, common_pb2.JobState.Name(j.state), j.attempts, [(s.stage, s.done) for s in j.stages])
        for j in jobs
        if j.state < common_pb2.JOB_STATE_DONE
    ][:5]
    processes = {
        name: proc.proc.poll() if proc.proc else "not started" for name, proc in deployment.procs.items()
    }
    logs = "\n".join(
        f"--- {name}'s last log lines\n{deployment.procs[name].output()[-chars:]}"
        for name, chars in (("store", 2000), ("fetcher", 2000), ("synthesizer", 6000))
    )
    return (
        f"jobs not ended after {timeout:g} s: {states}; {detail}\n"
        f"service exit codes (None: running) {processes}\n"
        f"sim settings {deployment.sim.config}\nsim {deployment.sim.stats}\n"
        f"corpus latency {deployment.corpus.latency} s, {deployment.corpus.stats}\n{logs}"
    )


async def run_job(
    deployment: Deployment,
    store: Store,
    *,
    fault: Fault | None = None,
    timeout: float = JOB_TIMEOUT,
    **options: object,
) -> tuple[JobRun, float | None]:
    """Submit the deployment's job (the sample corpus's URLs), run ``fault`` beside it, follow it to its end
    through store outages, and return the run and the fault's recovery time (seconds from the time the
    fault returned to the job's next progress). The job gets a model name of its own (no cache answers)
    unless ``options`` names one. Fails if the fault had not finished when the job ended."""
    options.setdefault("model", f"sim-fault-{uuid.uuid4().hex[:10]}")
    loop = asyncio.get_running_loop()
    calls = deployment.sim.stats.calls
    started = loop.time()
    job = await submit(store, deployment.urls(), **options)
    watch = JobWatch(job.id)
    injected = asyncio.create_task(fault(watch)) if fault else None
    address = deployment.env["STORYWIRE_STORE_ADDRESS"]
    following = follow(store, address, job.id, on_event=watch.add, say=print, reconnect_for=timeout)
    try:
        try:
            await asyncio.wait_for(following, timeout)
        except TimeoutError:
            seen = [(round(at - started, 1), brief(e)) for at, e in watch.events[-8:]]
            pytest.fail(f"{await stalled(deployment, store, [job.id], timeout)}\nlast events watched: {seen}")
        seconds = loop.time() - started
        fault_at = watch.fault_at = await asyncio.wait_for(injected, 5) if injected else None
    finally:
        if injected and not injected.done():
            injected.cancel()
    final = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id), timeout=30)).job
    stories = await job_stories(store, job.id)
    run = JobRun(final, stories, deployment.sim.stats.calls - calls, seconds, watch)
    return run, (watch.progress_after(fault_at) if fault_at is not None else None)


def tally(expected: Iterable[str], stories: Iterable[common_pb2.Story]) -> tuple[int, int]:
    """(lost, duplicated): clusters of ``expected`` without a story, and stories beyond one per key."""
    keys = [s.cluster_key for s in stories]
    return len(set(expected) - set(keys)), len(keys) - len(set(keys))


def fault_row(
    case: str, baseline: Baseline, run: JobRun, recovery_s: float | None = None, notes: str = ""
) -> FaultRow:
    """The table row of a job run under a fault, measured against the module's fault-free run."""
    state = common_pb2.JobState.Name(run.job.state).removeprefix("JOB_STATE_").lower()
    outcome = state if run.job.state == common_pb2.JOB_STATE_DONE else f"{state}: {run.job.error}"
    if run.job.attempts > 1:
        notes = f"{run.job.attempts} attempts" + (f"; {notes}" if notes else "")
    lost, duplicated = tally(baseline.cluster_keys, run.stories)
    return FaultRow(
        case=case,
        outcome=outcome,
        stories_expected=len(baseline.cluster_keys),
        stories_stored=len(run.cluster_keys),
        lost=lost,
        duplicated=duplicated,
        extra_llm_calls=run.llm_calls - baseline.llm_calls,
        recovery_s=None if recovery_s is None else round(recovery_s, 2),
        extra_s=round(run.seconds - baseline.seconds, 2),
        notes=notes,
    )


@dataclass(frozen=True)
class Restart:
    """Loop times of a service restart: signalled, exited, serving again."""

    signalled: float
    exited: float
    serving: float

    @property
    def exit_s(self) -> float:
        return self.exited - self.signalled

    @property
    def down_s(self) -> float:
        return self.serving - self.signalled


async def restart(deployment: Deployment, name: str, sig: int, timeout: float = 30.0) -> Restart:
    """Signal the deployment's ``name`` service, wait for it to exit, start it again on the same port and
    wait until it serves."""
    loop = asyncio.get_running_loop()
    proc: ServiceProcess = deployment.procs[name]
    signalled = loop.time()
    proc.signal(sig)
    await asyncio.to_thread(proc.wait, timeout)
    exited = loop.time()
    await wait_serving(deployment.start(name).address, timeout=timeout, security=deployment.security)
    return Restart(signalled, exited, loop.time())


@pytest.fixture(scope="module")
async def deployment(request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    """A whole deployment of its own for the module, with the module's ``SIM_SETTINGS`` and
    ``CORPUS_LATENCY``."""
    async with deploy() as running:
        sim_settings: dict[str, object] = getattr(request.module, "SIM_SETTINGS", {})
        if sim_settings:
            running.sim.reset(**sim_settings)
        running.corpus.latency = getattr(request.module, "CORPUS_LATENCY", 0.0)
        yield running


@pytest.fixture(scope="module")
async def baseline(deployment: Deployment) -> Baseline:
    """The module's job run without any fault (after the module's settings took effect), on a warm
    deployment: a first run of the same job fills the fetcher's caches, as
    they are for every later job of the module."""
    async with open_channel(
        deployment.env["STORYWIRE_STORE_ADDRESS"], security=deployment.security
    ) as channel:
        await run_job(deployment, Store(channel))  # warm-up
        run, _ = await run_job(deployment, Store(channel))
    assert run.job.state == common_pb2.JOB_STATE_DONE, run.job.error
    assert len(run.stories) == len(run.cluster_keys) > 0
    assert not run.fallbacks
    return run
