"""Transport: articles per second through fetcher -> synthesizer -> store, with a zero-latency LLM and
a local feed server, so what is measured is storywire's own cost per article (feed parsing, gRPC,
clustering, prompts, grounding, PostgreSQL writes). Goal: >= 5,000 articles/s on 2 cores.
No ideal is stated: the point is the overhead per article. The median of 3 runs (each on freshly
started services) is reported: one run varied by 1.5x here."""

from __future__ import annotations

from bench.env import BenchEnv
from bench.pipeline import run_pipeline
from bench.procs import sim_reset, sim_stats, simulator
from bench.report import Row


async def run(env: BenchEnv) -> list[Row]:
    articles = env.size(5000, 500)
    runs = 1 if env.quick else 3
    results = []
    with simulator(slots=64, latency=0.0, ttft=0.0, queue=100_000) as url:
        for _ in range(runs):
            sim_reset(url, slots=64, latency=0.0, ttft=0.0, queue=100_000)
            results.append(await run_pipeline(env, url, articles))
        calls = sim_stats(url)["calls"]
    result = sorted(results, key=lambda r: r.wall_s)[len(results) // 2]  # the median run
    walls = ", ".join(f"{r.wall_s:.2f}" for r in results)
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.stage_s.items())
    more = f"; stages: {stages}; median of runs {walls} s"
    return [result.row("transport", f"{articles} articles, 0 s LLM", calls, more)]
