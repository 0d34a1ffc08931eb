"""A whole storywire deployment for end-to-end tests: a private PostgreSQL/Redis, the sample corpus on
loopback, the LLM simulator, and the three services as subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from storywire.v1 import common_pb2, store_pb2, synthesizer_pb2, synthesizer_pb2_grpc

from devtools.corpus.server import CorpusServer
from devtools.llmsim import SimConfig, Simulator, start_simulator
from devtools.services import ServiceProcess, dev_security
from devtools.stack import Stack
from devtools.stack.proc import free_port
from runtime.client import ClientSecurity, open_channel
from runtime.stubs import StoreAllStub as Store
from runtime.stubs import SynthesizerStub

__all__ = ["Store"]
from tests.conftest import make_state_dir
from tests.helpers import wait_serving

SERVICES = ("store", "fetcher", "synthesizer")


@dataclass
class Deployment:
    env: dict[str, str]
    corpus: CorpusServer
    sim: Simulator
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    security: ClientSecurity = field(default_factory=dev_security)  # how tests reach the services
    stack: Stack | None = None  # its PostgreSQL and Redis (the fault tests stop and start them)

    def start(self, name: str) -> ServiceProcess:
        proc = ServiceProcess(
            name, env=self.env, port=int(self.env[f"STORYWIRE_{name.upper()}_PORT"])
        ).start()
        self.procs[name] = proc
        return proc

    def urls(self) -> list[str]:
        return self.corpus.job_urls()

    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.corpus.manifest()["labels"]  # type: ignore[assignment]
        return labels


@contextlib.asynccontextmanager
async def deploy(
    extra_env: dict[str, str] | None = None, security: ClientSecurity | None = None
) -> AsyncIterator[Deployment]:
    """The whole deployment; ``extra_env`` adds settings (TLS, tokens) to every service."""
    state = make_state_dir()
    stack = Stack(state)
    info = stack.up()
    corpus = CorpusServer()
    corpus_runner = await corpus.start()
    sim, sim_runner, sim_url = await start_simulator(SimConfig(slots=8, latency=0.2))
    env = {
        **info.env(),
        "STORYWIRE_LLM_BASE_URL": sim_url,
        "STORYWIRE_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        **(extra_env or {}),
    }
    for name in SERVICES:
        port = free_port()
        env[f"STORYWIRE_{name.upper()}_PORT"] = str(port)
        env[f"STORYWIRE_{name.upper()}_ADDRESS"] = f"127.0.0.1:{port}"
    deployment = Deployment(env, corpus, sim, security=security or dev_security(), stack=stack)
    try:
        for name in SERVICES:
            await wait_serving(deployment.start(name).address, security=deployment.security)
        yield deployment
    finally:
        for proc in reversed(list(deployment.procs.values())):
            proc.terminate(timeout=15)
        await sim_runner.cleanup()
        await corpus_runner.cleanup()
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


async def extra_synthesizer(env: Mapping[str, str]) -> ServiceProcess:
    """A synthesizer with ``env`` as its settings on a port of its own, once it serves."""
    port = free_port()
    proc = ServiceProcess(
        "synthesizer", env={**env, "STORYWIRE_SYNTHESIZER_PORT": str(port)}, port=port
    ).start()
    try:
        await wait_serving(proc.address)
    except BaseException:
        await asyncio.to_thread(proc.terminate, 15)
        raise
    return proc


@contextlib.asynccontextmanager
async def synthesizer_replaced(
    deployment: Deployment, env: Mapping[str, str]
) -> AsyncIterator[ServiceProcess]:
    """The deployment's synthesizer replaced, while the block runs, by one with ``env`` as its settings;
    the deployment's own started again on its port after."""
    await asyncio.to_thread(deployment.procs["synthesizer"].terminate, 15)
    try:
        worker = await extra_synthesizer(env)
        try:
            yield worker
        finally:
            await asyncio.to_thread(worker.terminate, 15)
    finally:
        await wait_serving(deployment.start("synthesizer").address)


@pytest.fixture(scope="module")
async def deployment() -> AsyncIterator[Deployment]:
    async with deploy() as running:
        yield running


@pytest.fixture(autouse=True)
async def accounting_invariant(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After every e2e test on the deployment: every job that test ran accounts for every entry."""
    if "deployment" not in request.fixturenames:
        yield
        return
    deployment: Deployment = request.getfixturevalue("deployment")
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    yield
    async with open_channel(
        deployment.env["STORYWIRE_STORE_ADDRESS"], security=deployment.security
    ) as channel:
        stub = Store(channel)
        jobs = (await stub.ListJobs(store_pb2.ListJobsRequest(page_size=1000), timeout=30)).jobs
        for job in jobs:
            if job.created_at.ToDatetime(dt.UTC) >= started:
                await check_accounting(stub, job)


async def check_accounting(store: Store, job: common_pb2.Job) -> None:
    """The invariant over ids: found = in exactly one story + left out with a reason; a DONE job only so."""
    assert "accounting does not add up" not in job.error, f"job {job.id}: {job.error}"
    if job.state != common_pb2.JOB_STATE_DONE:
        return
    a = job.accounting
    assert a.balanced, f"job {job.id} is done with an unbalanced accounting: {a.mismatch}"
    stories = await job_stories(store, job.id)
    ids = [i for s in stories for i in s.article_ids]
    assert len(ids) == len(set(ids)), f"job {job.id}: an article is in two stories"
    left_out = {c.reason: c.entries for c in a.left_out}
    assert common_pb2.LEFT_OUT_REASON_UNSPECIFIED not in left_out
    assert (a.stories, a.in_stories) == (len(stories), len(ids)), dump(MessageToDict(a))
    assert a.entries_found == a.in_stories + sum(left_out.values()), dump(MessageToDict(a))
    assert a.articles == a.in_stories + left_out.get(common_pb2.LEFT_OUT_REASON_CLUSTER_TOO_SMALL, 0)


@pytest.fixture
async def store(deployment: Deployment) -> AsyncIterator[Store]:
    async with open_channel(
        deployment.env["STORYWIRE_STORE_ADDRESS"], security=deployment.security
    ) as channel:
        yield Store(channel)


async def submit(store: Store, urls: list[str], **options: object) -> common_pb2.Job:
    spec = common_pb2.JobSpec(urls=urls, options=common_pb2.JobOptions(**options), name="e2e")  # type: ignore[arg-type]
    return (await store.SubmitJob(store_pb2.SubmitJobRequest(spec=spec))).job


async def cache_stats(deployment: Deployment) -> synthesizer_pb2.GetCacheStatsResponse:
    """The synthesizer's cache stats: its concurrency limit and the LLM calls in flight."""
    address = deployment.env["STORYWIRE_SYNTHESIZER_ADDRESS"]
    async with open_channel(address, security=deployment.security) as channel:
        stub: SynthesizerStub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
        return await stub.GetCacheStats(synthesizer_pb2.GetCacheStatsRequest(), timeout=30)


async def stories_stored(store: Store, job_id: str, count: int = 1) -> None:
    """Return once the job has stored ``count`` stories (provisional ones included)."""
    stored = 0
    async for event in store.WatchJob(store_pb2.WatchJobRequest(job_id=job_id)):
        stored += event.WhichOneof("event") == "story"
        if stored >= count:
            return
    raise AssertionError(f"job {job_id} ended with {stored} of the {count} stories awaited")


@contextlib.contextmanager
def simulator(deployment: Deployment, **changes: Any) -> Iterator[Simulator]:
    """The deployment's LLM simulator with ``changes`` (faults, latency) on top of its settings, and
    fresh counters; back to its settings as they were after."""
    before = deployment.sim.config
    deployment.sim.reset(**changes)
    try:
        yield deployment.sim
    finally:
        deployment.sim.reset(**asdict(before))


async def events_until_end(store: Store, job_id: str) -> list[store_pb2.WatchJobResponse]:
    return [e async for e in store.WatchJob(store_pb2.WatchJobRequest(job_id=job_id)) if not e.heartbeat]


async def job_stories(store: Store, job_id: str) -> list[common_pb2.Story]:
    reply = await store.ListStories(store_pb2.ListStoriesRequest(job_id=job_id, page_size=1000))
    return list(reply.stories)


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, default=str)[:2000]
