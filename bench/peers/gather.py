"""Peer: asyncio.gather with a fixed semaphore (the async rewrite in the original write-ups)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bench.peers.common import JSON_HEADERS, PeerRun, Story, Work, retry_after


async def run(base_url: str, work: Work, limit: int = 5) -> PeerRun:
    semaphore = asyncio.Semaphore(limit)
    out = PeerRun()
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def post(body: bytes) -> Any:
            while True:
                reply = await client.post("/chat/completions", content=body, headers=JSON_HEADERS)
                if reply.status_code != 429:
                    reply.raise_for_status()
                    return reply.json()
                out.rejected_429 += 1
                await asyncio.sleep(retry_after(reply.headers.get("retry-after")))

        async def one(story: Story) -> None:
            async with semaphore:
                while not story.done:
                    story.take(await post(story.body))
            out.settled(story)

        await asyncio.gather(*(one(s) for s in out.cluster(work)))
    return out
