"""Adaptive concurrency for LLM calls: slow start, then additive increase while latency stays near its
baseline, multiplicative decrease on congestion (429, 5xx, timeouts) or on latency inflation.

Latency matters as much as errors: on a CPU-bound backend (llama.cpp on a few cores) more concurrency
only makes each call slower, so a limiter that waited for errors would keep it oversubscribed. A static
limit (``static=True``) turns all of this off for users who want a fixed number of workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass

HISTORY = 1024  # limit changes kept in AdaptiveLimiter.history


@dataclass
class Permit:
    limiter: AdaptiveLimiter
    started: float
    limit_at_start: int
    _done: bool = False

    def success(self, latency: float | None = None) -> None:
        if not self._done:
            self._done = True
            self.limiter._on_success(time.monotonic() - self.started if latency is None else latency)

    def congestion(self) -> None:
        """A 5xx or a timeout: the backend struggles; cut multiplicatively (once per round trip)."""
        if not self._done:
            self._done = True
            self.limiter._on_congestion()

    def over_capacity(self) -> None:
        """A 429 while other calls are in flight: the backend is full at what it serves right now."""
        if not self._done:
            self._done = True
            self.limiter._on_over_capacity()

    def ignore(self) -> None:
        """The call failed for a reason that says nothing about load (bad request, bad output)."""
        if not self._done:
            self._done = True
            self.limiter._release()


class AdaptiveLimiter:
    def __init__(
        self,
        initial: int = 64,
        minimum: int = 1,
        maximum: int = 256,
        *,
        static: bool = False,
        tolerance: float = 2.0,
        backoff: float = 0.7,
        window: int = 64,
    ) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError("need 1 <= minimum <= maximum")
        self.minimum, self.maximum, self.static = minimum, maximum, static
        self.tolerance, self.backoff = tolerance, backoff
        self._limit = float(min(max(initial, minimum), maximum))
        self._slow_start = not static
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()  # callers waiting for a permit, in order
        self._latencies: deque[float] = deque(maxlen=window)
        self._last_cut = 0.0
        self._release_waiters: deque[asyncio.Future[None]] = deque()
        #: (monotonic time, limit) after every change, for tests and the limit-over-time trace; the latest
        #: HISTORY changes only, so that it does not grow for the life of the process
        self.history: deque[tuple[float, int]] = deque([(time.monotonic(), self.limit)], maxlen=HISTORY)
        #: when the backend last answered a call (any answer, errors included), or work arrived after
        #: an idle spell: what ``stalled_for`` measures from
        self._last_progress = time.monotonic()

    @property
    def limit(self) -> int:
        return max(self.minimum, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def busy(self) -> bool:
        """Calls are in flight or waiting for a permit."""
        return self._in_flight > 0 or any(not w.done() for w in self._waiters)

    def progressed(self) -> None:
        """The backend answered a call (whatever the answer)."""
        self._last_progress = time.monotonic()

    def stalled_for(self) -> float:
        """Seconds that work has waited for the LLM without any call making progress (0 when idle)."""
        return time.monotonic() - self._last_progress if self.busy else 0.0

    async def acquire(self) -> Permit:
        """A permit, first come first served. Each freed slot wakes exactly one waiter: with a
        Condition and notify_all, 1,000 queued clusters all woke on every completion (quadratic)."""
        if not self.busy:
            self._last_progress = time.monotonic()  # an idle spell is not a stall
        if self._in_flight < self.limit and not self._waiters:
            self._take()
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release(completed=False)  # granted just as we were cancelled: hand it on
                raise
        return Permit(self, time.monotonic(), self.limit)

    def _take(self) -> None:
        self._in_flight += 1

    def _grant(self) -> None:
        """Hand free slots to the oldest waiters (the slot is taken on their behalf)."""
        while self._waiters and self._in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    def _release(self, completed: bool = True) -> None:
        """A call gave its permit back; `completed` unless it was turned away for lack of capacity, in
        which case the backend has no free slot yet."""
        self._in_flight -= 1
        if completed:
            while self._release_waiters:
                waiter = self._release_waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break
        self._grant()

    async def next_release(self, timeout: float) -> None:
        """Wait until another call completes (one waiter per completion, in order), at most `timeout`
        seconds. With a static limit the limit cannot drop after a 429, so a call turned away waits here
        for a backend slot to free up instead of asking again at once."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._release_waiters.append(waiter)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await waiter

    def _set(self, value: float) -> None:
        before = self.limit
        self._limit = min(max(value, self.minimum), self.maximum)
        if self.limit != before:
            self.history.append((time.monotonic(), self.limit))

    def _on_success(self, latency: float) -> None:
        self.progressed()
        self._latencies.append(latency)
        if not self.static:
            baseline = min(self._latencies)
            if latency > self.tolerance * baseline and len(self._latencies) >= 4:
                # queueing at the backend: shrink towards what it really serves in parallel
                self._slow_start = False
                self._set(self._limit * max(0.5, self.tolerance * baseline / latency) ** 0.5)
            elif self._slow_start:
                self._set(self._limit + 1)  # doubles per round trip
            else:
                self._set(self._limit + 1 / self._limit)  # +1 per round trip
        self._release()

    def _on_over_capacity(self) -> None:
        """The calls still in flight are what the backend serves at once: keep exactly that many. Each
        rejected call lowers the estimate as it returns, so a burst converges within one round trip; the
        additive increase after successes probes for more capacity, one call at a time. The limit drops
        before the permit is handed on, so no waiter is let in above it."""
        self.progressed()
        if not self.static:
            self._slow_start = False
            still_in_flight = self._in_flight - 1  # without this rejected call
            self._set(min(self._limit, max(still_in_flight, self.minimum)))
        self._release(completed=False)

    def _on_congestion(self) -> None:
        self.progressed()
        if not self.static:
            now = time.monotonic()
            self._slow_start = False
            # one cut per round trip: a burst of 429s from one overload is one signal, not twenty
            rtt = min(self._latencies) if self._latencies else 0.1
            if now - self._last_cut >= rtt:
                self._last_cut = now
                self._set(max(self._limit * self.backoff, self.minimum))
        self._release()
