"""Adaptive capacity: the backend's slot count is unknown to storywire (4, 16, 64) and it answers 429
above capacity (no queue). storywire's default adaptive limit against fixed concurrency 3 and 64.
Ideal = ceil(calls / K) x latency; efficiency = ideal / wall."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

from bench.env import BenchEnv
from bench.procs import sim_reset, sim_stats, simulator
from bench.report import Row
from runtime.settings import load_settings
from services.synthesizer.engine import Engine
from services.synthesizer.settings import SynthesizerSettings
from services.synthesizer.stories.prompt import SourceArticle
from services.synthesizer.stories.writer import GenParams


def clusters(n: int, salt: str) -> list[list[SourceArticle]]:
    def text(c: int) -> str:
        return (
            f"The city council approved building plan {c} for the harbour district on Monday. "
            f"It will cost {c * 3 + 10} million crowns."
        )

    return [
        [SourceArticle(f"{salt}-{c}-{i}", f"Event {c} update", text(c), f"{salt}-{c}-{i}") for i in range(2)]
        for c in range(n)
    ]


async def run(env: BenchEnv) -> list[Row]:
    n = env.size(64, 24)
    latency = env.size(400, 100) / 1000
    variants = [
        ("storywire default (adaptive)", 0),
        ("static concurrency 3", 3),
        ("static concurrency 64", 64),
    ]
    rows: list[Row] = []
    with simulator(slots=4, latency=latency, queue=0) as url:
        for slots in (4, 16, 64):
            ideal = math.ceil(n / slots) * latency
            for name, workers in variants:
                sim_reset(url, slots=slots, latency=latency, queue=0)
                settings = load_settings(
                    SynthesizerSettings,
                    llm_base_url=url,
                    llm_max_workers=workers,
                    llm_max_attempts=20,
                    log_level="WARNING",
                )
                engine = Engine(settings)
                params = GenParams(f"adaptive-{uuid.uuid4().hex[:6]}", 200, 0.0)
                start = time.perf_counter()
                results = await asyncio.gather(
                    *(engine.writer.write(c, params) for c in clusters(n, params.model))
                )
                wall = time.perf_counter() - start
                await engine.aclose()
                st = sim_stats(url)
                fallbacks = sum(r.fallback for r in results)
                rows.append(
                    Row(
                        "adaptive",
                        f"K={slots}: {name}",
                        wall,
                        n,
                        "calls",
                        ideal_s=ideal,
                        notes=f"429s={st['rejected_429']} max in service={st['max_in_service']} "
                        f"final limit={engine.limiter.limit} fallbacks={fallbacks}",
                    )
                )
    return rows
