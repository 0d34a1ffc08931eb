"""HTTP client cost per LLM call: httpx (the LLM client's first implementation, still the fetcher's)
against aiohttp (the LLM client now), same simulator answering at once, 256 calls at 1, 16 and 64 in
flight. Reports CPU ms per call in this process: what one client spends that the backend does not.
Both clients parse the JSON body, as the LLM client does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from bench.env import BenchEnv
from bench.procs import sim_reset, simulator
from bench.report import Row

PAYLOAD = {
    "model": "bench",
    "messages": [
        {"role": "user", "content": "The council approved plan 3. It costs 19 million crowns. " * 5}
    ],
    "max_tokens": 200,
    "temperature": 0.0,
}


async def per_call(call: Callable[[], Awaitable[None]], calls: int, in_flight: int) -> tuple[float, float]:
    """(wall s, CPU ms per call) for ``calls`` calls with ``in_flight`` at once, after a warm-up round."""
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one() for _ in range(in_flight)))  # connections open, code paths warm
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    return time.perf_counter() - start, (time.process_time() - cpu) / calls * 1000


async def run(env: BenchEnv) -> list[Row]:
    calls = env.size(256, 64)
    rows = []
    with simulator(slots=64, latency=0.0, ttft=0.0, queue=100_000) as url:
        for in_flight in (1, 16, 64):
            sim_reset(url, slots=64, latency=0.0, ttft=0.0, queue=100_000)
            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=256)) as client:

                async def with_httpx(client: httpx.AsyncClient = client) -> None:
                    response = await client.post(url + "/chat/completions", json=PAYLOAD)
                    response.raise_for_status()
                    response.json()

                wall, cpu_ms = await per_call(with_httpx, calls, in_flight)
            rows.append(Row("httpclient", f"httpx, {in_flight} in flight", wall, calls, "calls",
                            notes=f"{cpu_ms:.2f} ms CPU per call", extra={"cpu_ms": cpu_ms}))  # fmt: skip
            connector = aiohttp.TCPConnector(limit=256)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def with_aiohttp(session: aiohttp.ClientSession = session) -> None:
                    async with session.post(url + "/chat/completions", json=PAYLOAD) as response:
                        response.raise_for_status()
                        await response.json()

                wall, cpu_ms = await per_call(with_aiohttp, calls, in_flight)
            rows.append(Row("httpclient", f"aiohttp, {in_flight} in flight", wall, calls, "calls",
                            notes=f"{cpu_ms:.2f} ms CPU per call", extra={"cpu_ms": cpu_ms}))  # fmt: skip
    return rows
