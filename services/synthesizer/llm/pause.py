"""A 429 whose Retry-After has a fraction of a second is a rate window's precise end (HTTP's Retry-After
is whole seconds; a server that says 0.63 has measured it): :meth:`AdaptiveLimiter.pause` lets no call
start before then. A static limit (``static=True``) turns the adaptation off for users who want a fixed
number of workers; pauses still apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Pause:
    """No call starts until a rate window's end; at its end ``resume`` lets the waiters in."""

    def __init__(self, clock: Callable[[], float], resume: Callable[[], None]) -> None:
        self._clock, self._on_end = clock, resume
        self._until = 0.0
        self._resume: asyncio.TimerHandle | None = None

    def active(self) -> bool:
        return self._clock() < self._until

    def start(self, seconds: float) -> None:
        """Start no call for ``seconds``; a shorter pause than the one under way changes nothing."""
        until = self._clock() + seconds
        if until <= self._until:
            return
        self._until = until
        if self._resume is not None:
            self._resume.cancel()
        self._resume = asyncio.get_running_loop().call_later(seconds, self._on_end)
