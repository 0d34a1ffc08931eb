"""Write chunks: full chunks at once, a partial one after the linger, everything before the end."""

from __future__ import annotations

import asyncio

from runtime.batching import queue_batches


async def test_chunks_fill_linger_and_end() -> None:
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    for i in range(5):
        queue.put_nowait(i)
    got: list[list[int]] = []

    async def consume() -> None:
        async for chunk in queue_batches(queue, 2, 0.05):
            got.append(chunk)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)  # 0,1 and 2,3 are full; 4 goes out alone after the linger
    assert got == [[0, 1], [2, 3], [4]]
    queue.put_nowait(5)
    queue.put_nowait(None)  # the end flushes what is pending and stops
    await asyncio.wait_for(task, 1)
    assert got == [[0, 1], [2, 3], [4], [5]]
    assert sum(map(len, got)) == 6
