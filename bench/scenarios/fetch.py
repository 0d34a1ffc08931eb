"""Fetch scenario: 150 article pages served on loopback with 50 ms of latency each.

Variants: a sequential loop (GET then the same parser, one URL at a time); the seed-004 style peer
(``asyncio.gather`` of every URL on one pooled httpx client, then the same parser on each body: httpx's
default pool opens up to 100 connections to the one host); and the fetcher service's Fetch stream twice:
with its shipped defaults (8 connections per host, 64 in all), and told the peer's capacity (100 per host
and in all: the request's ``per_host_concurrency`` and ``STORYWIRE_FETCH_MAX_CONNECTIONS``, printed in the
row). Ideal = latency x ceil(URLs / the row's connections to the host) (I/O only; parsing the HTML costs
CPU on top, reported separately)."""

from __future__ import annotations

import asyncio
import json
import math
import time

import grpc
import httpx
from storywire.v1 import fetcher_pb2, fetcher_pb2_grpc

from bench.env import BenchEnv
from bench.procs import corpus_server, settings_note
from bench.report import Row
from devtools.corpus.build import ROOT as SAMPLE
from devtools.health import wait_healthy
from devtools.services import ServiceProcess
from services.fetcher.http import Fetched, Validators
from services.fetcher.parse import parse

LATENCY = 0.05
#: httpx's default pool (``httpx.Limits(max_connections=100)``): what the seed-004 peer opens to the host
PEER_CONNECTIONS = 100
#: the fetcher's shipped per-host concurrency (``fetch_per_host_concurrency``)
DEFAULT_PER_HOST = 8


def article_paths(n: int) -> list[str]:
    labels: dict[str, str] = json.loads((SAMPLE / "manifest.json").read_text())["labels"]
    return sorted(labels)[:n]


def parsed(url: str, r: httpx.Response) -> int:
    """Articles the fetcher's own parsers find in one response."""
    content_type = r.headers["content-type"].split(";")[0]
    return len(parse(Fetched(url, r.status_code, content_type, r.charset_encoding, r.content, Validators())))


def sequential(urls: list[str]) -> tuple[int, float]:
    count, parse_s = 0, 0.0
    with httpx.Client(timeout=20) as client:
        for url in urls:
            r = client.get(url)
            t0 = time.perf_counter()
            count += parsed(url, r)
            parse_s += time.perf_counter() - t0
    return count, parse_s


async def gather_all(urls: list[str]) -> tuple[int, float]:
    """The seed-004 peer: every GET at once on one pooled client, then parse and extract each body."""
    async with httpx.AsyncClient(timeout=20) as client:
        responses = await asyncio.gather(*(client.get(url) for url in urls))
    t0 = time.perf_counter()
    count = sum(parsed(url, r) for url, r in zip(urls, responses, strict=True))
    return count, time.perf_counter() - t0


def ideal(n: int, connections: int) -> float:
    return LATENCY * math.ceil(n / connections)


async def fetcher_row(urls: list[str], per_host: int, settings: dict[str, str]) -> Row:
    """The fetcher's Fetch stream in a process of its own with ``settings`` (env) on top of the defaults;
    ``per_host`` 0 = its default per-host concurrency."""
    env = {"STORYWIRE_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "STORYWIRE_LOG_LEVEL": "WARNING", **settings}
    proc = ServiceProcess("fetcher", env=env).start()
    try:
        await wait_healthy(proc.address, "fetcher")
        request = fetcher_pb2.FetchRequest(
            urls=urls, options=fetcher_pb2.FetchOptions(per_host_concurrency=per_host)
        )
        async with grpc.aio.insecure_channel(proc.address) as channel:
            stub = fetcher_pb2_grpc.FetcherServiceStub(channel)
            start = time.perf_counter()
            replies = [r async for r in stub.Fetch(request)]
            wall = time.perf_counter() - start
    finally:
        proc.terminate(15)
    summary = replies[-1].summary
    changed = {**settings, **({"per_host_concurrency": str(per_host)} if per_host else {})}
    note = settings_note(changed)
    variant = "storywire fetcher (Fetch stream)" + (", told the peer's capacity" if changed else ", defaults")
    connections = per_host or DEFAULT_PER_HOST
    row = Row("fetch", variant, wall, summary.articles, "articles", ideal(len(urls), connections))
    row.notes = f"{note}; {connections} connections to the host; failed={summary.urls_failed}"
    return row


async def run(env: BenchEnv) -> list[Row]:
    n = env.size(150, 40)
    rows: list[Row] = []
    with corpus_server(latency=LATENCY) as base:
        urls = [base + p for p in article_paths(n)]
        start = time.perf_counter()
        count, parse_s = await asyncio.to_thread(sequential, urls)
        wall = time.perf_counter() - start
        rows.append(
            Row(
                "fetch",
                "sequential loop (GET + parse)",
                wall,
                count,
                "articles",
                ideal_s=ideal(n, 1),
                notes=f"{LATENCY * 1000:.0f} ms/URL; parsing took {parse_s:.2f} s of it",
            )
        )
        start = time.perf_counter()
        count, parse_s = await gather_all(urls)
        wall = time.perf_counter() - start
        rows.append(
            Row(
                "fetch",
                "asyncio.gather of all URLs, then parse (seed-004)",
                wall,
                count,
                "articles",
                ideal_s=ideal(n, PEER_CONNECTIONS),
                notes=f"one pooled httpx client (default limits: {PEER_CONNECTIONS} connections); "
                f"parsing took {parse_s:.2f} s of it",
            )
        )
        rows.append(await fetcher_row(urls, 0, {}))
        told = {"STORYWIRE_FETCH_MAX_CONNECTIONS": str(PEER_CONNECTIONS)}
        rows.append(await fetcher_row(urls, PEER_CONNECTIONS, told))
    return rows
