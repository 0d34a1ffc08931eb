"""Items from a queue in chunks for the store's write streams: a chunk is sent when it is full, when
``linger`` seconds have passed since its first item, or when the queue ends (``None``). One message per
item cost the synthesizer about a fifth of its CPU on a 5,000-article job (bench transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def gather_chunks(
    queue: asyncio.Queue[T | None], max_items: int, linger: float
) -> AsyncIterator[list[T]]:
    loop = asyncio.get_running_loop()
    done = False
    while not done:
        first = await queue.get()
        if first is None:
            return
        chunk = [first]
        deadline = loop.time() + linger
        while len(chunk) < max_items:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            if item is None:
                done = True
                break
            chunk.append(item)
        yield chunk
