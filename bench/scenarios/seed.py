"""Seed scenario: the sample corpus (154 articles, 14 events) against a simulator with K slots and a fixed
latency per call, for K = 16 and K = 3 (the original system's concurrency).

Variants, same clusters, same prompt, same simulator:
- sequential loop; ThreadPoolExecutor(3) (the original system); asyncio.gather with Semaphore(5);
- storywire synthesizer: its Synthesize stream (articles in, stories out), in its own process;
- storywire end to end: a job through store, fetcher and synthesizer (fetching the corpus over HTTP);
- storywire warm rerun: the same job again (every story from the cache).
Ideal (LLM-bound) = ceil(clusters / K) x latency; efficiency = ideal / wall. Peers and the synthesizer
stream report the median of 3 runs (1 in quick mode); the services get one small warm-up stream first.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from storywire.v1 import common_pb2, store_pb2, store_pb2_grpc, synthesizer_pb2, synthesizer_pb2_grpc

from bench.env import BenchEnv
from bench.peers import gather, sequential, threadpool
from bench.procs import corpus_server, sim_reset, sim_stats, simulator, start_services
from bench.report import Row
from devtools.corpus.build import ROOT as SAMPLE
from devtools.corpus.build import compose
from runtime.ids import article_id, content_hash
from runtime.stubs import StoreStub
from services.synthesizer.clustering import Doc, cluster_docs
from services.synthesizer.stories.prompt import SourceArticle

STREAM_BATCH = 50  # articles per Synthesize message


def corpus_articles() -> list[common_pb2.Article]:
    out = []
    for item in compose():
        digest = content_hash(item.title, item.text)
        url = "http://sample.test" + item.path
        aid = article_id(url, digest)
        out.append(
            common_pb2.Article(
                id=aid, url=url, canonical_url=url, content_hash=digest, title=item.title, text=item.text
            )
        )
    return out


def peer_clusters(articles: list[common_pb2.Article]) -> list[list[SourceArticle]]:
    docs = [Doc.of(a.id, a.title, a.text, a.content_hash) for a in articles]
    return [
        [SourceArticle(d.id, d.title, d.text, d.content_hash) for d in c.docs]
        for c in cluster_docs(docs, 0.3)
    ]


def row(  # noqa: PLR0917 - a row's fields
    variant: str, wall: float, ideal: float, clusters: int, url: str, slots: int, latency: float
) -> Row:
    st = sim_stats(url)
    notes = f"K={slots} {latency:g}s/call; sim calls={st['calls']} max in service={st['max_in_service']}"
    return Row("seed", variant, wall, clusters, "stories", ideal_s=ideal, notes=notes, extra={"sim": st})


async def synthesize(address: str, articles: list[common_pb2.Article], model: str) -> int:
    async def requests() -> AsyncIterator[synthesizer_pb2.SynthesizeRequest]:
        yield synthesizer_pb2.SynthesizeRequest(
            config=synthesizer_pb2.SynthesisConfig(job_id="bench", model=model)
        )
        for i in range(0, len(articles), STREAM_BATCH):
            batch = common_pb2.ArticleBatch(articles=articles[i : i + STREAM_BATCH])
            yield synthesizer_pb2.SynthesizeRequest(batch=batch)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
        return len([r async for r in stub.Synthesize(requests()) if r.WhichOneof("item") == "story"])


async def run_job(store: StoreStub, urls: list[str], model: str) -> common_pb2.Job:
    spec = common_pb2.JobSpec(urls=urls, options=common_pb2.JobOptions(model=model), name="bench")
    job = (await store.SubmitJob(store_pb2.SubmitJobRequest(spec=spec))).job
    async for _ in store.WatchJob(store_pb2.WatchJobRequest(job_id=job.id)):
        pass
    return (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job


async def run(env: BenchEnv) -> list[Row]:
    latency = 0.2 if env.quick else 1.0
    articles = corpus_articles()
    rows: list[Row] = []
    with simulator(slots=16, latency=latency) as url, corpus_server() as corpus:
        services, addresses = await start_services(env, url)
        try:
            # a long-running service is warm: imports done, connections to the LLM and Redis open
            await synthesize(addresses["synthesizer"], articles[:20], f"warm-up-{uuid.uuid4().hex[:6]}")
            for slots in (16, 3):
                rows += await one_config(env, url, corpus, addresses, articles, slots, latency)
        finally:
            for proc in reversed(services):
                proc.terminate(15)
    return rows


async def one_config(  # noqa: PLR0917
    env: BenchEnv,
    url: str,
    corpus: str,
    addresses: dict[str, str],
    articles: list[common_pb2.Article],
    slots: int,
    latency: float,
) -> list[Row]:
    rows: list[Row] = []
    model = f"seed-{uuid.uuid4().hex[:6]}"
    clusters = peer_clusters(articles)
    ideal = math.ceil(len(clusters) / slots) * latency

    peers: list[tuple[str, Any]] = [
        ("sequential loop", lambda: asyncio.to_thread(sequential.run, url, clusters, model)),
        ("ThreadPoolExecutor(3) (original)", lambda: asyncio.to_thread(threadpool.run, url, clusters, model)),
        ("asyncio.gather + Semaphore(5)", lambda: gather.run(url, clusters, model)),
    ]  # fmt: skip
    runs = 1 if env.quick else 3

    async def median_wall(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
        walls, result = [], None
        for _ in range(runs):
            sim_reset(url, slots=slots, latency=latency, queue=1024)
            start = time.perf_counter()
            result = await call()
            walls.append(time.perf_counter() - start)
        return statistics.median(walls), result

    for name, call in peers:
        wall, _ = await median_wall(call)
        rows.append(row(name, wall, ideal, len(clusters), url, slots, latency))

    counter = iter(range(runs))
    wall, stories = await median_wall(
        lambda: synthesize(addresses["synthesizer"], articles, f"{model}-synth-{next(counter)}")
    )
    rows.append(row("storywire synthesizer (stream)", wall, ideal, stories, url, slots, latency))
    if runs > 1:
        for r in rows[-4:]:
            r.notes += f"; median of {runs} runs"

    paths: list[str] = json.loads((SAMPLE / "manifest.json").read_text())["job_urls"]
    async with grpc.aio.insecure_channel(addresses["store"]) as channel:
        store = store_pb2_grpc.StoreServiceStub(channel)
        for variant in ("storywire end to end (3 services)", "storywire warm rerun (cache)"):
            sim_reset(url, slots=slots, latency=latency, queue=1024)
            start = time.perf_counter()
            job = await run_job(store, [corpus + p for p in paths], model + "-e2e")
            wall = time.perf_counter() - start
            stored = next((s.done for s in job.stages if s.stage == common_pb2.STAGE_STORE), 0)
            r = row(variant, wall, ideal if "warm" not in variant else 0.0, stored, url, slots, latency)
            r.notes += f"; llm_calls={job.totals.llm_calls} cache_hits={job.totals.cache_hits}"
            rows.append(r)
    return rows
