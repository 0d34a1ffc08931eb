"""Peer: asyncio.gather with a fixed semaphore (the async rewrite in the original write-ups)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from bench.peers.common import payload
from services.synthesizer.stories.prompt import SourceArticle


async def run(
    base_url: str, clusters: Sequence[Sequence[SourceArticle]], model: str, limit: int = 5
) -> list[str]:
    semaphore = asyncio.Semaphore(limit)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one(cluster: Sequence[SourceArticle]) -> str:
            async with semaphore:
                reply = await client.post("/chat/completions", json=payload(cluster, model))
                reply.raise_for_status()
                text: str = reply.json()["choices"][0]["message"]["content"]
                return text

        return await asyncio.gather(*(one(c) for c in clusters))
