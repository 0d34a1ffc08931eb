"""Scale: one job of 2,500, 5,000 and 10,000 articles (10 per event) with a fast LLM (10 ms per call,
64 slots). Each size runs on freshly started services so each peak resident memory (VmHWM) belongs to
that job. Goal: memory flat in the job size, time linear (compare us/article across sizes)."""

from __future__ import annotations

from bench.env import BenchEnv
from bench.pipeline import run_pipeline
from bench.procs import sim_reset, sim_stats, simulator
from bench.report import Row

SIZES = (2500, 5000, 10_000)
QUICK_SIZES = (200, 400)


async def run(env: BenchEnv) -> list[Row]:
    rows = []
    with simulator(slots=64, latency=0.01, ttft=0.0, queue=100_000) as url:
        for articles in QUICK_SIZES if env.quick else SIZES:
            sim_reset(url, slots=64, latency=0.01, ttft=0.0, queue=100_000)
            result = await run_pipeline(env, url, articles)
            calls = sim_stats(url)["calls"]
            rows.append(result.row("scale", f"{articles} articles", calls))
    return rows
