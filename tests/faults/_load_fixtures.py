"""Fixtures and measures of the load-side fault cases (LLM faults, cancellations, malformed requests, 50
concurrent jobs): one deployment per test module (tests/e2e/conftest.py's: private PostgreSQL and Redis,
the sample corpus, the LLM simulator, the three services as subprocesses with their default settings),
and a job run measured the way the fault table reports it.

Test modules import the fixtures by name (``from tests.faults._load_fixtures import deployment, store``);
they can move into tests/faults/conftest.py unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from storywire.v1 import common_pb2, store_pb2, synthesizer_pb2, synthesizer_pb2_grpc

from devtools.llmsim import SimConfig, Simulator
from runtime.client import open_channel
from runtime.stubs import SynthesizerStub
from tests.e2e.conftest import Deployment, Store, check_accounting, deploy, job_stories, submit
from tests.helpers import wait_serving

__all__ = [
    "Deployment",
    "JobRun",
    "Store",
    "baseline",
    "deployment",
    "median",
    "run_job",
    "simulator",
    "store",
    "tally",
]

#: the simulator's settings in the deployment (tests/e2e/conftest.py), restored after each fault
SIM_DEFAULTS = SimConfig(slots=8, latency=0.2)


@pytest.fixture(scope="module")
async def deployment() -> AsyncIterator[Deployment]:
    async with deploy() as running:
        yield running


@pytest.fixture
async def store(deployment: Deployment) -> AsyncIterator[Store]:
    async with open_channel(
        deployment.env["STORYWIRE_STORE_ADDRESS"], security=deployment.security
    ) as channel:
        yield Store(channel)


@dataclass(frozen=True)
class JobRun:
    """A job run to its end: its final state, its stories, and what it cost."""

    job: common_pb2.Job
    stories: list[common_pb2.Story]
    #: seconds from the submission to the final event, as the client saw it
    seconds: float
    #: chat completion requests the LLM backend received while the job ran (faults and retries included)
    backend_calls: int

    @property
    def keys(self) -> set[str]:
        return {s.cluster_key for s in self.stories}

    @property
    def run_seconds(self) -> float:
        """Seconds from the worker's claim to the final state (the store's timestamps)."""
        return (self.job.finished_at.ToDatetime() - self.job.started_at.ToDatetime()).total_seconds()

    @property
    def fallbacks(self) -> list[common_pb2.Story]:
        return [s for s in self.stories if s.fallback]


@pytest.fixture(scope="module")
async def baseline(deployment: Deployment) -> JobRun:
    """The sample job without any fault, on this module's deployment (what faults are compared with),
    after one run that warms the services up (first imports, connection pools, conditional GET)."""
    async with open_channel(
        deployment.env["STORYWIRE_STORE_ADDRESS"], security=deployment.security
    ) as channel:
        await run_job(deployment, Store(channel), model="sim-warm-up")
        run = await run_job(deployment, Store(channel), model="sim-baseline")
    assert run.job.state == common_pb2.JOB_STATE_DONE, run.job.error
    assert not run.fallbacks
    return run


@contextlib.contextmanager
def simulator(deployment: Deployment, **changes: Any) -> Iterator[Simulator]:
    """The deployment's LLM simulator with ``changes`` (faults, latency), back to its settings after."""
    deployment.sim.reset(**{**asdict(SIM_DEFAULTS), **changes})
    try:
        yield deployment.sim
    finally:
        deployment.sim.reset(**asdict(SIM_DEFAULTS))


async def wait_final(store: Store, job_id: str) -> common_pb2.Job:
    """The job once it reached a final state (its watch ends there)."""
    async for _ in store.WatchJob(store_pb2.WatchJobRequest(job_id=job_id)):
        pass
    return (await store.GetJob(store_pb2.GetJobRequest(job_id=job_id))).job


async def run_job(
    deployment: Deployment, store: Store, model: str, timeout: float = 90, **options: object
) -> JobRun:
    """Submit the sample job with ``model`` (a name not used before: nothing comes from the cache) and
    follow it to its end; its accounting is checked as the e2e suite checks every job."""
    loop = asyncio.get_running_loop()
    calls = deployment.sim.stats.calls
    started = loop.time()
    job = await submit(store, deployment.urls(), model=model, **options)
    final = await asyncio.wait_for(wait_final(store, job.id), timeout)
    seconds = loop.time() - started
    await check_accounting(store, final)
    return JobRun(final, await job_stories(store, job.id), seconds, deployment.sim.stats.calls - calls)


def tally(expected: Iterable[str], stories: Iterable[common_pb2.Story]) -> tuple[int, int]:
    """(lost, duplicated): clusters of ``expected`` without a story, and stories beyond one per key."""
    keys = [s.cluster_key for s in stories]
    return len(set(expected) - set(keys)), len(keys) - len(set(keys))


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


async def cache_stats(deployment: Deployment) -> synthesizer_pb2.GetCacheStatsResponse:
    """The synthesizer's cache stats: its concurrency limit and the LLM calls in flight."""
    address = deployment.env["STORYWIRE_SYNTHESIZER_ADDRESS"]
    async with open_channel(address, security=deployment.security) as channel:
        stub: SynthesizerStub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
        return await stub.GetCacheStats(synthesizer_pb2.GetCacheStatsRequest(), timeout=30)


async def fresh_synthesizer(deployment: Deployment) -> None:
    """Replace the deployment's synthesizer with a new process (SIGTERM, then start and wait for SERVING).
    The old one is waited for in a thread: the simulator it may still be talking to runs in this loop."""
    await asyncio.to_thread(deployment.procs["synthesizer"].terminate, 30)
    await wait_serving(deployment.start("synthesizer").address, security=deployment.security)
