"""One job through fresh store, fetcher and synthesizer processes on a synthetic corpus: wall time, the
stages' own durations, the job's counts, and each service's peak resident memory (``VmHWM``)."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from storywire.v1 import common_pb2, store_pb2, store_pb2_grpc

from bench.env import BenchEnv
from bench.procs import corpus_server, start_services
from bench.report import Row
from devtools.corpus.synthetic import build_synthetic
from devtools.services import ServiceProcess
from runtime.stages import STAGE_NAMES
from runtime.stubs import StoreStub


@dataclass
class PipelineResult:
    articles: int  # articles the job fetched and clustered
    stories: int
    wall_s: float
    state: str
    stage_s: dict[str, float] = field(default_factory=dict)
    idle_rss_mib: dict[str, float] = field(default_factory=dict)  # after start, before the job
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    llm_calls: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds each service spent on the job

    @property
    def per_article_us(self) -> float:
        return self.wall_s / max(self.articles, 1) * 1e6

    def row(self, scenario: str, variant: str, sim_calls: int, more_notes: str = "") -> Row:
        """The benchmark row: per-article cost, CPU and memory of each service, and the job's end."""
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in self.cpu_s.items())
        rss = ", ".join(f"{k} {self.idle_rss_mib[k]:.0f}->{v:.0f}" for k, v in self.peak_rss_mib.items())
        notes = (
            f"{self.per_article_us:.0f} us/article; CPU s: {cpu}; {self.stories} stories, "
            f"sim calls={sim_calls}; RSS MiB idle->peak: {rss}; job {self.state}{more_notes}"
        )
        extra = {"result": self.__dict__, "per_article_us": self.per_article_us}
        return Row(scenario, variant, self.wall_s, self.articles, "articles", notes=notes, extra=extra)


def memory_mib(pid: int, key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since start) of a process, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid(proc: ServiceProcess) -> int:
    assert proc.proc is not None
    return proc.proc.pid


async def run_pipeline(env: BenchEnv, llm_url: str, articles: int) -> PipelineResult:
    """Build a corpus of ``articles`` (10 per event, feeds of 250 items), start the services afresh (so
    each peak belongs to this job alone) and run one job over every feed."""
    with tempfile.TemporaryDirectory(prefix="storywire-synthetic-") as tmp:
        corpus = build_synthetic(Path(tmp), articles)
        with corpus_server(root=Path(tmp)) as base:
            procs, addresses = await start_services(env, llm_url)
            try:
                idle = {p.name: memory_mib(_pid(p), "VmRSS") for p in procs}
                cpu_before = {p.name: cpu_seconds(_pid(p)) for p in procs}
                result = await _job(addresses["store"], [base + p for p in corpus.job_paths])
                result.cpu_s = {p.name: cpu_seconds(_pid(p)) - cpu_before[p.name] for p in procs}
                result.idle_rss_mib = idle
                result.peak_rss_mib = {p.name: memory_mib(_pid(p), "VmHWM") for p in procs}
            finally:
                for proc in reversed(procs):
                    proc.terminate(15)
    return result


async def run_job(store: StoreStub, spec: common_pb2.JobSpec) -> tuple[common_pb2.Job, float]:
    """Submit a job and watch it to its end: the job as submitted, and the wall time in seconds."""
    start = time.perf_counter()
    job = (await store.SubmitJob(store_pb2.SubmitJobRequest(spec=spec))).job
    async for _ in store.WatchJob(store_pb2.WatchJobRequest(job_id=job.id)):
        pass
    return job, time.perf_counter() - start


async def _job(store_address: str, urls: list[str]) -> PipelineResult:
    options = common_pb2.JobOptions(model=f"pipeline-{uuid.uuid4().hex[:6]}")
    spec = common_pb2.JobSpec(urls=urls, options=options, name="bench pipeline")
    async with grpc.aio.insecure_channel(store_address) as channel:
        store = store_pb2_grpc.StoreServiceStub(channel)
        job, wall = await run_job(store, spec)
        job = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    stage_s = {}
    for s in job.stages:
        if s.HasField("started_at") and s.HasField("finished_at"):
            begun, ended = s.started_at.ToNanoseconds(), s.finished_at.ToNanoseconds()
            stage_s[STAGE_NAMES[s.stage]] = (ended - begun) / 1e9
    done = {STAGE_NAMES[s.stage]: s for s in job.stages}
    return PipelineResult(
        articles=done["cluster"].total if "cluster" in done else 0,
        stories=done["store"].done if "store" in done else 0,
        wall_s=wall,
        state=common_pb2.JobState.Name(job.state),
        stage_s=stage_s,
        llm_calls=job.totals.llm_calls,
    )
