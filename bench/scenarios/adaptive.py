"""Adaptive capacity: a backend that serves K calls at once and answers 429 above that, with no queue
(Hugging Face TGI's ``--max-concurrent-requests``), K = 4 and 16, unknown to storywire; 32 synthetic
events of 2 articles (:mod:`bench.synthevents`: told apart as real events are), latency by the tokens
(the queue profile's rates, independent slots).

Variants: storywire with its shipped defaults (the Synthesize stream, a synthesizer started afresh for
each K); plain clients (aiohttp, honouring Retry-After): gather + Semaphore(3), the oracle gather +
Semaphore(K), and gather of everything (= a static 64 here: 32 calls). Each client does storywire's work
(:mod:`bench.peers.common`: the same clustering, requests and answer check). Ideal = the simulator's model
for a client that knows K; efficiency = ideal / wall. One run each (3 for storywire, the median). The
fresh synthesizer's first stream is its own row, the cold start (its limiter probes the backend: one call
alone, then two together); it is also the warm-up (every event is an LLM call: at least the probe's 3),
so storywire's timed runs measure the settled limiter."""

from __future__ import annotations

import functools
import statistics
import uuid
from typing import Any

from bench.env import BenchEnv
from bench.llmrun import (
    StreamRun,
    cold_start_row,
    ideal,
    median_row,
    peer_first,
    peer_notes,
    sim_notes,
    stream,
    timed,
)
from bench.peers import oracle
from bench.peers.common import Work, cluster_articles, probe_plan
from bench.procs import restart, settings_note, simulator, start_services
from bench.report import Row
from bench.synthevents import event_articles
from services.synthesizer.stories.prompt import SourceArticle

#: TGI-like: K independent slots, 429 above them (no queue)
STRICT: dict[str, Any] = {"queue": 0, "batch_slowdown": 0.0}
#: storywire settings the scenario changes (none: every storywire row runs with the shipped ones)
SETTINGS: dict[str, str] = {}


async def run(env: BenchEnv) -> list[Row]:
    n = env.size(32, 12)
    salt = uuid.uuid4().hex[:6]
    articles = event_articles(n, salt)
    clusters = cluster_articles(articles)  # for the ideal; every client clusters them again, timed
    rows: list[Row] = []
    with simulator(profile="queue") as url:
        services, addresses = await start_services(env, url, **SETTINGS)
        try:
            for i, slots in enumerate((4, 16)):
                if i:  # a fresh synthesizer: the limiter back at its defaults
                    services[-1] = await restart(services[-1])
                rows += await one_capacity(
                    env, url, addresses["synthesizer"], slots, articles, clusters, salt
                )
        finally:
            for proc in reversed(services):
                proc.terminate(15)
    return rows


async def one_capacity(  # noqa: PLR0917
    env: BenchEnv, url: str, synth: str, slots: int, articles: list[Any], clusters: list[list[SourceArticle]],
    salt: str,
) -> list[Row]:  # fmt: skip
    runs = 1 if env.quick else 3
    changes = {**STRICT, "slots": slots}
    _, ideal_s = ideal(clusters, "queue", **changes)
    model = f"adaptive-{slots}-{salt}"
    work = Work(articles, model, await probe_plan(url))
    rows: list[Row] = []
    for name, limit in (("plain gather + Semaphore(3)", 3), (f"oracle: gather + Semaphore(K={slots})", slots),
                        ("unbounded gather (all at once)", None)):  # fmt: skip
        call = functools.partial(oracle.run, url, work, limit)
        walls, results, st = await timed(url, "queue", 1, call, **changes)
        firsts = [peer_first(r) for r in results]
        notes = f"{sim_notes(st)}; {peer_notes(results)}"
        stories = len(results[-1].stories)
        rows.append(median_row("adaptive", f"K={slots}: {name}", walls, firsts, stories, ideal_s, notes))
    cold = await timed(url, "queue", 1, lambda: stream(synth, articles, f"{model}-sw-cold"), **changes)
    counter = iter(range(runs))
    walls, streams, st = await timed(
        url, "queue", runs, lambda: stream(synth, articles, f"{model}-sw-{next(counter)}"), **changes
    )
    oracle_row = next(r for r in rows if "oracle" in r.variant)
    rows.append(storywire(slots, walls, streams, st, ideal_s, oracle_row))
    rows.append(cold_start_row("adaptive", f"K={slots}", cold, ideal_s, SETTINGS))
    return rows


def storywire(  # noqa: PLR0917 - a row's fields
    slots: int, walls: list[float], streams: list[StreamRun], st: dict[str, Any], ideal_s: float,
    oracle_row: Row,
) -> Row:  # fmt: skip
    limits = "/".join(str(s.limit_after) for s in streams)
    last = streams[-1]
    cluster_ms = statistics.median(s.cluster_s for s in streams) * 1000
    notes = (
        f"{settings_note(SETTINGS)}; {sim_notes(st)}; limit after each run {limits}; "
        f"clustering {cluster_ms:.0f} ms; llm calls={last.llm_calls} fallbacks={last.fallbacks}"
    )
    row = median_row("adaptive", f"K={slots}: storywire default (adaptive)", walls,
                     [s.first_s for s in streams], last.stories, ideal_s, notes)  # fmt: skip
    row.notes += f"; oracle wall / this {oracle_row.wall_s / row.wall_s:.2f}"
    row.extra["oracle_ratio"] = oracle_row.wall_s / row.wall_s
    return row
