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
            peak = ", ".join(
                f"{k} {result.idle_rss_mib[k]:.0f}->{v:.0f}" for k, v in result.peak_rss_mib.items()
            )
            per_article_us = result.wall_s / max(result.articles, 1) * 1e6
            cpu = ", ".join(f"{k} {v:.1f}" for k, v in result.cpu_s.items())
            notes = (
                f"{per_article_us:.0f} us/article; CPU s: {cpu}; "
                f"{result.stories} stories, sim calls={calls}; RSS MiB idle->peak: {peak}; job {result.state}"
            )
            extra = {"result": result.__dict__, "per_article_us": per_article_us}
            rows.append(Row("scale", f"{articles} articles", result.wall_s, result.articles, "articles",
                            notes=notes, extra=extra))  # fmt: skip
    return rows
