"""Cut an async stream into batches bounded by size and by time.

A reader task drains the stream into a bounded queue (backpressure to the client) so that waiting for
the batch deadline never cancels a read on the underlying gRPC stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def batches(stream: AsyncIterator[T], size: int, max_delay: float) -> AsyncIterator[list[T]]:
    """Yield lists of at most ``size`` items; a non-empty list is yielded at the latest ``max_delay``
    seconds after its first item arrived. Errors of the stream are re-raised after the items before them."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=size * 2)
    error: list[BaseException] = []

    async def reader() -> None:
        try:
            async for item in stream:
                await queue.put(item)
        except Exception as exc:
            error.append(exc)
        finally:
            await queue.put(_END)

    task = asyncio.create_task(reader())
    loop = asyncio.get_running_loop()
    try:
        done = False
        while not done:
            batch: list[T] = []
            first = await queue.get()
            if first is _END:
                break
            batch.append(first)  # type: ignore[arg-type]
            deadline = loop.time() + max_delay
            while len(batch) < size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
                if item is _END:
                    done = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            yield batch
        if error:
            raise error[0]
    finally:
        task.cancel()
