"""Identical requests in flight at once share one call.

The shared call runs in a task of its own, not in the task of the caller that started it, and counts
the callers waiting for it: a cancelled caller (its job cancelled, its client gone) stops waiting
without touching the call, so every other caller still gets the result. The call is cancelled only when
no caller is left to want it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Shared(Generic[T]):
    task: asyncio.Task[T]
    waiters: int = 0


class Coalescer(Generic[T]):
    def __init__(self) -> None:
        self._inflight: dict[str, _Shared[T]] = {}
        self.coalesced = 0

    @property
    def in_flight(self) -> int:
        """Shared calls running now."""
        return len(self._inflight)

    async def run(self, key: str, factory: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The result of ``factory()`` for ``key``, and whether this caller joined another's call."""
        shared = self._inflight.get(key)
        joined = shared is not None
        if shared is None:
            shared = self._start(key, factory)
        else:
            self.coalesced += 1
        shared.waiters += 1
        try:
            # shield: this caller's cancellation ends its wait, not the shared call
            return await asyncio.shield(shared.task), joined
        finally:
            shared.waiters -= 1
            if shared.waiters == 0 and not shared.task.done():
                # nobody wants it any more: stop it, and let the next identical request start afresh
                self._forget(key, shared)
                shared.task.cancel()

    def _start(self, key: str, factory: Callable[[], Awaitable[T]]) -> _Shared[T]:
        async def call() -> T:
            return await factory()

        shared: _Shared[T] = _Shared(asyncio.create_task(call(), name=f"llm-shared-{key[:12]}"))
        self._inflight[key] = shared
        shared.task.add_done_callback(lambda _: self._forget(key, shared))
        return shared

    def _forget(self, key: str, shared: _Shared[T]) -> None:
        if self._inflight.get(key) is shared:
            del self._inflight[key]
