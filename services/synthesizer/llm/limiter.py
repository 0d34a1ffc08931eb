"""The adaptive limiter: permits for LLM calls, first come first served, under a limit that adapts to
what the calls' answers say of the backend. Each part has a module of its own: the limit's AIMD
(``aimd``), the latency it judges calls by (``latency``), the cold start (``probe``), the pause a 429's
Retry-After asks for (``pause``) and the permit a call reports on (``permit``). Every part reads the
time through :meth:`AdaptiveLimiter.now`, so a test fakes the clock of this module alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from services.synthesizer.llm.aimd import HISTORY, MIN_STEP, AimdLimit
from services.synthesizer.llm.latency import SOLO, Baseline, Sample
from services.synthesizer.llm.pause import Pause
from services.synthesizer.llm.permit import Permit
from services.synthesizer.llm.probe import PAIR, ColdStartProbe

__all__ = ["HISTORY", "MIN_STEP", "PAIR", "SOLO", "AdaptiveLimiter", "Permit", "Sample"]


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
        probe: bool = True,
    ) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError("need 1 <= minimum <= maximum")
        self.minimum, self.maximum, self.static = minimum, maximum, static
        self.tolerance, self.backoff = tolerance, backoff
        initial_limit = float(min(max(initial, minimum), maximum))
        #: the cold start's probe: one call alone, then two together, before the limit opens to initial
        probing = probe and not static and minimum == 1 and initial_limit > 2
        self._baseline = Baseline(tolerance, window)
        self._limit = AimdLimit(
            1.0 if probing else initial_limit, minimum, maximum,
            slow_start=not static, backoff=backoff, baseline=self._baseline, clock=self.now,
        )  # fmt: skip
        self._probe = ColdStartProbe(probing, initial_limit, self._limit)
        self._pause = Pause(self.now, self._grant)
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()  # callers waiting for a permit, in order
        self._area, self._area_at = 0.0, self.now()
        self._release_waiters: deque[asyncio.Future[None]] = deque()
        #: when the backend last answered a call (any answer, errors included), or work arrived after
        #: an idle spell: what ``stalled_for`` measures from
        self._last_progress = self.now()

    def now(self) -> float:
        """The limiter's clock (monotonic seconds)."""
        return time.monotonic()

    @property
    def limit(self) -> int:
        return self._limit.limit

    @property
    def history(self) -> deque[tuple[float, int]]:
        """(monotonic time, limit) after every change, for tests and the limit-over-time trace; the latest
        HISTORY changes only."""
        return self._limit.history

    @property
    def probing(self) -> bool:
        """The cold start's probe is still under way (the limit is 1 or 2, not yet ``initial``)."""
        return self._probe.probing

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def busy(self) -> bool:
        """Calls are in flight or waiting for a permit."""
        return self._in_flight > 0 or any(not w.done() for w in self._waiters)

    def progressed(self) -> None:
        """The backend answered a call (whatever the answer)."""
        self._last_progress = self.now()

    def stalled_for(self) -> float:
        """Seconds that work has waited for the LLM without any call making progress (0 when idle)."""
        return self.now() - self._last_progress if self.busy else 0.0

    async def acquire(self) -> Permit:
        """A permit, first come first served. Each freed slot wakes exactly one waiter: with a
        Condition and notify_all, 1,000 queued clusters all woke on every completion (quadratic)."""
        if not self.busy:
            self._last_progress = self.now()  # an idle spell is not a stall
            self._limit.settle()
        if not self._waiting() and self._may_start():
            self._take()
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._grant()  # never wait while there is room
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release(completed=False)  # granted just as we were cancelled: hand it on
                else:
                    with contextlib.suppress(ValueError):  # not granted: no longer demand
                        self._waiters.remove(waiter)
                    self._grant()
                raise
        return Permit(self, self.now(), self.limit, self.area())

    def _waiting(self) -> bool:
        """A live caller waits for a permit. Waiters cancelled but not yet removed (their task has not
        run its handler yet) are dropped from the front first, so they never count as demand."""
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        return bool(self._waiters)

    def _may_start(self) -> bool:
        """Room under the limit, no pause (its timer grants at its end), and no call in flight while one
        must run alone."""
        if self._baseline.want_solo and self._in_flight:
            return False
        return self._in_flight < self.limit and not self.paused()

    def _take(self) -> None:
        self.area()
        self._in_flight += 1

    def _grant(self) -> None:
        """Hand free slots to the oldest waiters (the slot is taken on their behalf)."""
        while self._waiters and self._may_start():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    def _release(self, completed: bool = True) -> None:
        """A call gave its permit back; `completed` unless it was turned away for lack of capacity, in
        which case the backend has no free slot yet."""
        self.area()
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

    def area(self) -> float:
        """The integral of calls in flight over time (seconds): differences give the mean concurrency."""
        now = self.now()
        self._area += self._in_flight * (now - self._area_at)
        self._area_at = now
        return self._area

    def paused(self) -> bool:
        return self._pause.active()

    def pause(self, seconds: float) -> None:
        """Start no call for ``seconds`` (a rate window's Retry-After); waiters are let in at its end."""
        self._pause.start(seconds)

    def allowed(self, concurrency: float) -> float:
        """How many times its best a call may take with ``concurrency`` calls in service before the limit
        shrinks (see :meth:`Baseline.allowed`)."""
        return self._baseline.allowed(concurrency)

    def _on_success(self, sample: Sample | None) -> None:
        self.progressed()
        if sample is not None:
            self._baseline.add(sample)
        if self.static:
            pass
        elif self._probe.probing:
            self._probe.success(sample)
        else:
            self._limit.success(sample, self._waiting)
        self._release()

    def _on_ignored(self) -> None:
        self._probe.ignored()
        self._release()

    def _on_over_capacity(self) -> None:
        """The calls still in flight are what the backend serves at once: keep exactly that many. Each
        rejected call lowers the estimate as it returns, so a burst converges within one round trip; the
        additive increase after successes probes for more capacity, one call at a time. The limit drops
        before the permit is handed on, so no waiter is let in above it."""
        self.progressed()
        if not self.static:
            self._probe.end()  # a backend that serves fewer than the probe's two
            self._limit.over_capacity(self._in_flight - 1)  # without this rejected call
        self._release(completed=False)

    def _on_congestion(self, concurrency: float) -> None:
        """A 5xx or a timeout on a call that ran with ``concurrency`` calls in service (time-averaged)."""
        self.progressed()
        if not self.static:
            self._probe.congestion(concurrency)
            self._limit.congestion()
        self._release()
