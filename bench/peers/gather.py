"""Peer: asyncio.gather with a fixed semaphore (the async rewrite in the original write-ups)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from bench.peers.common import PeerRun, payload, retry_after
from services.synthesizer.stories.prompt import SourceArticle


async def run(
    base_url: str, clusters: Sequence[Sequence[SourceArticle]], model: str, limit: int = 5
) -> PeerRun:
    semaphore = asyncio.Semaphore(limit)
    out = PeerRun()
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one(cluster: Sequence[SourceArticle]) -> str:
            async with semaphore:
                while True:
                    reply = await client.post("/chat/completions", json=payload(cluster, model))
                    if reply.status_code != 429:
                        reply.raise_for_status()
                        return out.answered(reply.json()["choices"][0]["message"]["content"])
                    out.rejected_429 += 1
                    await asyncio.sleep(retry_after(reply.headers.get("retry-after")))

        await asyncio.gather(*(one(c) for c in clusters))
    return out
