"""``python -m bench.shape BASE_URL [--model M] [--in-flight 1 2 4]``: how a backend's time per request
grows with the requests in service, to compare a simulator profile with the real server it models.

For each n it sends n identical seed-job requests (storywire's request for the first sample cluster with
the plan it uses on a backend that says nothing about itself, temperature 0,
prompt caching off where the server has it) at once, after one warm-up request, and prints the mean
seconds per request and its ratio to n = 1. A CPU backend (llama.cpp) gives a ratio near n (the
simulator's ``cpu`` profile: exactly n); a GPU batch (vLLM) a ratio near 1. Loopback only, like every
benchmark here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp

from bench.peers.common import Story, Work, cluster_articles, default_plan
from bench.scenarios.seed import corpus_articles
from services.synthesizer.llm.client import request_payload


async def shape(base_url: str, model: str, in_flight: list[int], max_tokens: int) -> list[tuple[int, float]]:
    # cache_prompt: false (a llama.cpp field, ignored elsewhere): every request pays its prefill
    request = Story(cluster_articles(corpus_articles())[0], Work((), model, default_plan())).request
    body = {**request_payload(request), "max_tokens": max_tokens, "temperature": 0.0,
            "cache_prompt": False}  # fmt: skip
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:

        async def one() -> float:
            start = time.perf_counter()
            async with session.post(base_url + "/chat/completions", json=body) as r:
                r.raise_for_status()
                await r.json()
            return time.perf_counter() - start

        await one()  # warm-up: the prompt cache and the connection
        out = []
        for n in in_flight:
            seconds = await asyncio.gather(*(one() for _ in range(n)))
            out.append((n, statistics.mean(seconds)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shape", description=__doc__)
    parser.add_argument("base_url", help="OpenAI-compatible base URL, up to /v1")
    parser.add_argument("--model", default="bench")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    rows = asyncio.run(shape(args.base_url, args.model, args.in_flight, args.max_tokens))
    alone = rows[0][1]
    for n, seconds in rows:
        print(f"{n} in flight: {seconds:.3f} s per request, {seconds / alone:.2f}x the time of one")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
