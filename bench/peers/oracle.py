"""Peers at their best, a dozen lines each: ``asyncio.gather`` + ``Semaphore(K)`` with the backend's
capacity K known in advance (the oracle), or ``gather`` of everything at once (``limit=None``). One
pooled aiohttp session (the cheaper client per call); a 429 waits its Retry-After, then asks again. A
story's regeneration keeps its permit (the stricter prompt goes out as soon as the answer is read)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from bench.peers.common import JSON_HEADERS, PeerRun, Story, Work, retry_after


async def run(base_url: str, work: Work, limit: int | None) -> PeerRun:
    out = PeerRun()
    gate = asyncio.Semaphore(limit) if limit else None
    timeout = aiohttp.ClientTimeout(total=120)
    url = base_url + "/chat/completions"
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def post(body: bytes) -> Any:
            while True:
                async with session.post(url, data=body, headers=JSON_HEADERS) as r:
                    if r.status != 429:
                        r.raise_for_status()
                        return await r.json()
                    out.rejected_429 += 1
                    wait = retry_after(r.headers.get("Retry-After"))
                await asyncio.sleep(wait)

        async def one(story: Story) -> None:
            async with gate or contextlib.nullcontext():
                while not story.done:
                    story.take(await post(story.body))
            out.settled(story)

        await asyncio.gather(*(one(s) for s in out.cluster(work)))
    return out
