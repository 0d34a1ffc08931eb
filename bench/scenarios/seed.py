"""Seed scenario: the sample corpus (154 articles, 14 events) on each simulator profile (``queue``: vLLM,
``cpu``: llama.cpp on few cores, ``ratelimit``: a hosted API, ``sloppy``: 30 % bad answers; see
:mod:`devtools.simmodel`), time to the first story and to the last.

Variants, same articles, same simulator (reset before each run). Every peer does storywire's work inside
its timed region (:mod:`bench.peers.common`): it clusters the articles with the default clustering,
sends storywire's byte-identical request per cluster, checks the answers and regenerates as storywire
does; the clustering time is printed apart. The variants:
- the original system's ways: a sequential loop, ThreadPoolExecutor(3), asyncio.gather + Semaphore(5);
- peers at their best: the oracle (gather + Semaphore(K), told the profile's capacity K) and gather of
  everything at once; both honour Retry-After, as every peer does; on ``cpu`` also Semaphore(2), so
  that the static limits 1, 2, 3, 5 and all form a sweep; on ``sloppy`` also the oracle's schedule with
  "no answer check" (it ships what it gets, as the peers did before they checked; not in the goals);
- storywire with its shipped defaults, on a synthesizer started afresh for each profile: its Synthesize
  stream (articles in, stories out); on ``queue`` and ``sloppy`` a job through the three services, and
  on ``queue`` the same job again (every story from the cache). The fresh synthesizer's first stream is
  its own row, the cold start: its limiter knows nothing of the backend and probes it (one call alone,
  then two together) before it opens up or stays at 1, which costs a batching or rate-limited backend
  two round trips and spares a CPU-bound one a burst. That run is also the warm-up: it makes at least
  3 LLM calls (every cluster is one; the probe needs 3), so the timed runs after it measure the settled
  limiter, not one mid-probe.
Ideal = the simulator's own model for a client that knows the backend (``bench.llmrun.ideal``);
efficiency = ideal / wall (the ideal counts the LLM calls only, not the clustering; on ``sloppy`` it
counts the oracle's regenerations as a second round). The oracle, the unbounded peer and the stream
report the median of 3 runs (1 in quick mode), the others one run.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from storywire.v1 import common_pb2, store_pb2, store_pb2_grpc

from bench.env import BenchEnv
from bench.llmrun import (
    StreamRun,
    capacity,
    checked_ideal,
    cold_start_row,
    ideal,
    median_row,
    passing,
    peer_first,
    peer_notes,
    sim_notes,
    stream,
    timed,
)
from bench.peers import gather, oracle, sequential, threadpool
from bench.peers.common import PeerRun, Work, cluster_articles, probe_plan
from bench.procs import corpus_server, restart, settings_note, sim_reset, sim_stats, simulator, start_services
from bench.report import Row
from devtools.corpus.build import ROOT as SAMPLE
from devtools.corpus.build import as_article, compose
from runtime.stubs import StoreStub
from services.synthesizer.stories.prompt import SourceArticle

PROFILES = ("queue", "cpu", "ratelimit", "sloppy")
QUICK_CLUSTERS = 5
#: the sloppy profile's peer that checks nothing (not the oracle: the goals compare the checked one)
UNCHECKED = "no answer check: gather + Semaphore(K={k})"
#: storywire settings the scenario changes (none: every storywire row runs with the shipped ones)
SETTINGS: dict[str, str] = {}


def corpus_articles() -> list[common_pb2.Article]:
    return [as_article("http://sample.test" + item.path, item.title, item.text) for item in compose()]


async def run_job(store: StoreStub, urls: list[str], model: str) -> common_pb2.Job:
    spec = common_pb2.JobSpec(urls=urls, options=common_pb2.JobOptions(model=model), name="bench")
    job = (await store.SubmitJob(store_pb2.SubmitJobRequest(spec=spec))).job
    async for _ in store.WatchJob(store_pb2.WatchJobRequest(job_id=job.id)):
        pass
    return (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job


def peers(url: str, work: Work, profile: str) -> list[tuple[str, int, Callable[[], Awaitable[PeerRun]]]]:
    """(variant, its runs' multiplier: 1 = every run / 0 = one run, call)."""
    k = capacity(profile)
    out: list[tuple[str, int, Callable[[], Awaitable[PeerRun]]]] = [
        ("sequential loop", 0, lambda: asyncio.to_thread(sequential.run, url, work)),
        ("ThreadPoolExecutor(3) (original)", 0, lambda: asyncio.to_thread(threadpool.run, url, work)),
        ("asyncio.gather + Semaphore(5)", 0, lambda: gather.run(url, work)),
    ]
    if profile == "cpu":
        out.append(("plain gather + Semaphore(2)", 0, lambda: oracle.run(url, work, 2)))
    out += [
        (f"oracle: gather + Semaphore(K={k})", 1, lambda: oracle.run(url, work, k)),
        ("unbounded gather (all at once)", 1, lambda: oracle.run(url, work, None)),
    ]
    if profile == "sloppy":
        naive = Work(work.articles, work.model, work.plan, checked=False)
        out.append((UNCHECKED.format(k=k), 1, lambda: oracle.run(url, naive, k)))
    return out


async def run(env: BenchEnv) -> list[Row]:
    articles = corpus_articles()
    clusters = cluster_articles(articles)  # for the ideal; every peer clusters them again, timed
    e2e_ideal = {p: ideal(clusters, p)[1] for p in PROFILES}  # the job always covers the whole corpus
    if env.quick:  # a few clusters, their articles only
        clusters = clusters[:QUICK_CLUSTERS]
        keep = {a.id for c in clusters for a in c}
        articles = [a for a in articles if a.id in keep]
    rows: list[Row] = []
    with simulator(profile="queue") as url, corpus_server() as corpus:
        services, addresses = await start_services(env, url, **SETTINGS)
        try:
            for i, profile in enumerate(PROFILES):
                if i:  # a fresh synthesizer: the limiter back at its defaults
                    services[-1] = await restart(services[-1])
                rows += await one_profile(
                    env, url, corpus, addresses, articles, clusters, profile, e2e_ideal[profile]
                )
        finally:
            for proc in reversed(services):
                proc.terminate(15)
    return rows


async def one_profile(  # noqa: PLR0917
    env: BenchEnv, url: str, corpus: str, addresses: dict[str, str], articles: list[common_pb2.Article],
    clusters: list[list[SourceArticle]], profile: str, e2e_ideal: float,
) -> list[Row]:  # fmt: skip
    runs = 1 if env.quick else 3
    first_ideal, last_ideal = ideal(clusters, profile)
    model = f"seed-{profile}-{uuid.uuid4().hex[:6]}"
    n = len(clusters)
    rows: list[Row] = []
    work = Work(articles, model, await probe_plan(url))
    oracle_runs: list[PeerRun] = []
    for variant, every_run, call in peers(url, work, profile):
        walls, results, st = await timed(url, profile, runs if every_run else 1, call)
        last = results[-1]
        if variant.startswith("oracle"):
            oracle_runs.append(last)
        notes = f"{sim_notes(st)}; {peer_notes(results)}"
        if profile == "sloppy":
            accepted = (
                f"accepted LLM stories {len(last.stories) - last.fallbacks}/{len(last.stories)}"
                if last.stories[0].work.checked
                else f"answers passing the checks {passing(last)}/{len(last.stories)} (no check: all shipped)"
            )
            notes += f"; {accepted}"
        rows.append(median_row("seed", f"{profile}: {variant}", walls, [peer_first(r) for r in results],
                               len(last.stories), last_ideal, notes))  # fmt: skip
    if profile == "sloppy":  # the ideal of checked answers counts the regenerations (the oracle's)
        oracle_run = next(r for r in oracle_runs if r.stories and r.stories[0].work.checked)
        last_ideal = checked_ideal(oracle_run, profile)
        for row in rows:
            row.ideal_s = last_ideal if "no answer check" not in row.variant else row.ideal_s
        if not env.quick:  # the job's clusters are the oracle's: their ideal counts its regenerations too
            e2e_ideal = last_ideal
    # storywire, on a synthesizer started afresh: its first run is the cold start and the warm-up
    synth = addresses["synthesizer"]
    cold = await timed(url, profile, 1, lambda: stream(synth, articles, f"{model}-cold"))
    counter = iter(range(runs))
    walls, results, st = await timed(
        url, profile, runs, lambda: stream(synth, articles, f"{model}-synth-{next(counter)}")
    )
    rows.append(storywire_row(profile, walls, results, st, n, last_ideal, rows))
    rows.append(cold_start_row("seed", profile, cold, last_ideal, SETTINGS))
    rows += await end_to_end(url, corpus, addresses["store"], profile, model, e2e_ideal, env.quick)
    rows[0].notes += f"; ideal first story {first_ideal:.2f} s"
    return rows


def storywire_row(  # noqa: PLR0917
    profile: str, walls: list[float], results: list[StreamRun], st: dict[str, Any], n: int, ideal_s: float,
    peer_rows: list[Row],
) -> Row:  # fmt: skip
    last = results[-1]
    limits = "/".join(str(r.limit_after) for r in results)
    cluster_ms = statistics.median(r.cluster_s for r in results) * 1000
    notes = f"{settings_note(SETTINGS)}; {sim_notes(st)}; limit after each run {limits}"
    notes += (
        f"; clustering {cluster_ms:.0f} ms; llm calls={last.llm_calls} "
        f"grounding rejections={last.rejections} fallbacks={last.fallbacks}"
    )
    if profile == "sloppy":
        notes += f"; accepted LLM stories {last.stories - last.fallbacks}/{n}"
    firsts = [r.first_s for r in results]
    variant = f"{profile}: storywire synthesizer (stream)"
    row = median_row("seed", variant, walls, firsts, last.stories, ideal_s, notes)
    oracle_row = next(r for r in peer_rows if "oracle" in r.variant)
    checked = [r for r in peer_rows if "no answer check" not in r.variant]
    best_first = min(checked, key=lambda r: r.first_s or float("inf"))
    row.notes += f"; oracle wall / this {oracle_row.wall_s / row.wall_s:.2f}"
    row.notes += (
        f"; best static first story {best_first.first_s:.2f} s ({best_first.variant.split(': ', 1)[1]})"
    )
    row.extra.update(
        {"oracle_ratio": oracle_row.wall_s / row.wall_s, "best_static_first_s": best_first.first_s,
         "runs": [r.__dict__ for r in results]}
    )  # fmt: skip
    return row


async def end_to_end(  # noqa: PLR0917
    url: str, corpus: str, store_address: str, profile: str, model: str, ideal_s: float, quick: bool
) -> list[Row]:
    """The job through the three services (on queue and sloppy; quick: queue only), and on queue again
    from the cache."""
    paths: list[str] = json.loads((SAMPLE / "manifest.json").read_text())["job_urls"]
    variants = ["storywire end to end (3 services)"]
    if profile == "queue":
        variants.append("storywire warm rerun (cache)")
    elif profile != "sloppy" or quick:  # the job's stored stories matter on sloppy (accepted or not)
        return []
    rows = []
    async with grpc.aio.insecure_channel(store_address) as channel:
        store = store_pb2_grpc.StoreServiceStub(channel)
        for variant in variants:
            sim_reset(url, profile=profile)
            start = time.perf_counter()
            job = await run_job(store, [corpus + p for p in paths], model + "-e2e")
            wall = time.perf_counter() - start
            stored = next((s.done for s in job.stages if s.stage == common_pb2.STAGE_STORE), 0)
            t = job.totals
            notes = (
                f"{settings_note(SETTINGS)}; {sim_notes(sim_stats(url))}; llm_calls={t.llm_calls} "
                f"cache_hits={t.cache_hits} "
                f"grounding rejections={t.grounding_rejections} fallbacks={t.fallbacks}; "
                f"accepted LLM stories {stored - t.fallbacks}/{stored}; includes fetching the 33 URLs"
            )
            warm = "warm" in variant
            rows.append(Row("seed", f"{profile}: {variant}", wall, stored, "stories",
                            ideal_s=None if warm else ideal_s, notes=notes,
                            extra={"stored": stored, "fallbacks": t.fallbacks, "llm_calls": t.llm_calls,
                                   "rejections": t.grounding_rejections}))  # fmt: skip
    return rows
