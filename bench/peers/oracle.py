"""Peers at their best, a dozen lines each: ``asyncio.gather`` + ``Semaphore(K)`` with the backend's
capacity K known in advance (the oracle), or ``gather`` of everything at once (``limit=None``). One
pooled aiohttp session (the cheaper client per call); a 429 waits its Retry-After, then asks again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import aiohttp

from bench.peers.common import PeerRun, payload, retry_after
from services.synthesizer.stories.prompt import SourceArticle


async def run(
    base_url: str, clusters: Sequence[Sequence[SourceArticle]], model: str, limit: int | None
) -> PeerRun:
    out = PeerRun()
    gate = asyncio.Semaphore(limit) if limit else None
    timeout = aiohttp.ClientTimeout(total=120)
    url = base_url + "/chat/completions"
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(cluster: Sequence[SourceArticle]) -> str:
            async with gate or contextlib.nullcontext():
                while True:
                    async with session.post(url, json=payload(cluster, model)) as r:
                        if r.status != 429:
                            r.raise_for_status()
                            body = await r.json()
                            return out.answered(body["choices"][0]["message"]["content"])
                        out.rejected_429 += 1
                        wait = retry_after(r.headers.get("Retry-After"))
                    await asyncio.sleep(wait)

        await asyncio.gather(*(one(c) for c in clusters))
    return out
