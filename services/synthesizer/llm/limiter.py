"""Adaptive concurrency for LLM calls: slow start, then additive increase while latency stays near its
baseline, multiplicative decrease on congestion (429, 5xx, timeouts) or on latency inflation. The limit
grows only while calls wait for a permit: a limit that held nothing back has not been tested.

Latency matters as much as errors: on a CPU-bound backend (llama.cpp on a few cores) more concurrency
only makes each call slower, so a limiter that waited for errors would keep it oversubscribed.

- A call's latency is judged against the backend's best, per call, per completion token and per token
  (prompt + completion), taking the least inflated of the three readings: calls differ in size, and
  whether the prompt or the answer costs more depends on the backend.
- How much inflation is allowed depends on the calls in service with it (time-averaged, c): more than
  (c + 1) / 2 times its best (within [1.5, ``tolerance``]) means the extra calls bought little
  throughput. On a backend whose time per call grows in proportion to the calls in service (llama.cpp
  on a few cores) that holds at c = 2, so the limit settles at 1; a vLLM-like batch (a little slower
  per call added) or independent slots never come near it.
- Calls that only ever ran together cannot tell how fast one is alone (with n in service each takes n
  times as long, and they all look alike): after a latency cut with no call ever seen alone, the next
  call runs alone, once, to measure it.
- After a cut by that concurrency rule the additive increase slows (halved per round trip that cuts,
  down to 1/64 of a call per round trip) until the limit has held the level that was cut, so the
  limiter does not keep probing a level that already proved too much.

A cold start probes before it opens up (``probe``, the default): on an unknown backend the first call
runs alone (the backend's best), then two run together, and only once both of the pair have answered,
neither more than 1.5 times its best (the concurrency rule at c = 2), does the limit open to
``initial``. The pair is judged by its slower answer: a backend that serves one call at a time
(llama-server with one slot, Ollama with NUM_PARALLEL=1) answers the first of the pair at solo speed
while the other waits behind it. A CPU-bound or one-slot backend is found after two round trips at a
concurrency of at most 2, where opening at ``initial`` at once put every call in service together
(llama.cpp: the first answer 4 calls late); a batching or rate-limited backend pays two round trips
once in the life of the process. A 5xx, timeout or 429 during the pair ends the probe without opening
(the additive increase takes over from the cut); during the first call alone, a 5xx or timeout leaves
the probe where it is (nothing was learnt about concurrency), and so does one on a call that ran alone
while the limit was already 2 (sparse work: the pair never ran).

A 429 whose Retry-After has a fraction of a second is a rate window's precise end (HTTP's Retry-After
is whole seconds; a server that says 0.63 has measured it): :meth:`AdaptiveLimiter.pause` lets no call
start before then. A static limit (``static=True``) turns the adaptation off for users who want a fixed
number of workers; pauses still apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass

HISTORY = 1024  # limit changes kept in AdaptiveLimiter.history


@dataclass
class Permit:
    limiter: AdaptiveLimiter
    started: float
    limit_at_start: int
    #: the limiter's integral of calls in flight over time when the permit was granted
    area_at_start: float = 0.0
    _done: bool = False

    def concurrency(self) -> float:
        """Calls in flight while this one was (itself included), averaged over its time."""
        elapsed = time.monotonic() - self.started
        area = self.limiter.area() - self.area_at_start
        return max(1.0, area / elapsed) if elapsed > 0 else float(self.limiter.in_flight)

    def success(
        self, latency: float | None = None, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> None:
        """The backend served the call; with its size, a latency sample (without, only a capacity one)."""
        if not self._done:
            self._done = True
            measured = time.monotonic() - self.started if latency is None else latency
            sized = prompt_tokens > 0 or completion_tokens > 0
            sample = Sample(measured, prompt_tokens, completion_tokens, self.concurrency()) if sized else None
            self.limiter._on_success(sample)

    def congestion(self) -> None:
        """A 5xx or a timeout: the backend struggles; cut multiplicatively (once per round trip)."""
        if not self._done:
            self._done = True
            self.limiter._on_congestion(self.concurrency())

    def over_capacity(self) -> None:
        """A 429 while other calls are in flight: the backend is full at what it serves right now."""
        if not self._done:
            self._done = True
            self.limiter._on_over_capacity()

    def ignore(self) -> None:
        """The call failed for a reason that says nothing about load (bad request, bad output)."""
        if not self._done:
            self._done = True
            self.limiter._on_ignored()


#: the slowest additive increase after repeated latency cuts: 1/64 of a call per round trip
MIN_STEP = 1 / 64
#: a call whose time-averaged concurrency is below this ran (mostly) alone
SOLO = 1.5
#: the cold start's pair: two calls in service together
PAIR = 2.0


@dataclass(frozen=True)
class Sample:
    """One served call: its latency, its size and the calls in service with it (time-averaged)."""

    latency: float
    prompt_tokens: int
    completion_tokens: int
    concurrency: float

    def costs(self) -> tuple[float, float, float]:
        """Seconds per call, per completion token and per token (0 where the size is unknown)."""
        tokens = self.prompt_tokens + self.completion_tokens
        return (
            self.latency,
            self.latency / self.completion_tokens if self.completion_tokens > 0 else 0.0,
            self.latency / tokens if tokens > 0 else 0.0,
        )


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
        self._initial = float(min(max(initial, minimum), maximum))
        #: the cold start's probe: one call alone, then two together, before the limit opens to initial
        self._probing = probe and not static and minimum == 1 and self._initial > 2
        #: the probe's answers of calls that ran together, until both of the pair have answered
        self._pair: list[Sample] = []
        self._limit = 1.0 if self._probing else self._initial
        self._slow_start = not static
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()  # callers waiting for a permit, in order
        #: (per call, per completion token, per token) of the recent samples
        self._costs: deque[tuple[float, float, float]] = deque(maxlen=window)
        self._last_cut = self._last_latency_cut = 0.0
        #: additive increase per round trip (halved by each cut of the concurrency rule) and the limit cut
        self._step, self._ceiling = 1.0, 0
        self._area, self._area_at = 0.0, time.monotonic()
        self._paused_until = 0.0
        self._resume: asyncio.TimerHandle | None = None
        #: costs of the recent calls that ran alone (kept beyond the window: the backend's real best)
        self._solo: deque[tuple[float, float, float]] = deque(maxlen=16)
        #: a latency cut with no call ever seen alone: the next call runs alone, to measure the best
        self._want_solo = False
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
    def probing(self) -> bool:
        """The cold start's probe is still under way (the limit is 1 or 2, not yet ``initial``)."""
        return self._probing

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
            self._settle()
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
        return Permit(self, time.monotonic(), self.limit, self.area())

    def _settle(self) -> None:
        """Work arrives after an idle spell: a limit that has climbed back to a level the concurrency rule
        cut is a probe, not a known capacity, so the new burst starts just below it (the additive increase
        probes again within the burst). A probe at a burst's start would hold back its first answer: on a
        CPU-bound backend the first two calls each take twice as long."""
        if self._ceiling and self.limit >= self._ceiling:
            self._set(self._ceiling - 1)

    def _waiting(self) -> bool:
        """A live caller waits for a permit. Waiters cancelled but not yet removed (their task has not
        run its handler yet) are dropped from the front first, so they never count as demand."""
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        return bool(self._waiters)

    def _may_start(self) -> bool:
        """Room under the limit, no pause (its timer grants at its end), and no call in flight while one
        must run alone."""
        if self._want_solo and self._in_flight:
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
        now = time.monotonic()
        self._area += self._in_flight * (now - self._area_at)
        self._area_at = now
        return self._area

    def paused(self) -> bool:
        return time.monotonic() < self._paused_until

    def pause(self, seconds: float) -> None:
        """Start no call for ``seconds`` (a rate window's Retry-After); waiters are let in at its end."""
        until = time.monotonic() + seconds
        if until <= self._paused_until:
            return
        self._paused_until = until
        if self._resume is not None:
            self._resume.cancel()
        self._resume = asyncio.get_running_loop().call_later(seconds, self._grant)

    def _set(self, value: float) -> None:
        before = self.limit
        self._limit = min(max(value, self.minimum), self.maximum)
        if self.limit != before:
            self.history.append((time.monotonic(), self.limit))

    def allowed(self, concurrency: float) -> float:
        """How many times its best a call may take with ``concurrency`` calls in service before the limit
        shrinks: ``tolerance`` alone (nothing to blame but the backend's own queue), else (c + 1) / 2
        within [1.5, tolerance]: at c = 2, 1.5 times slower means the second call bought a third of a
        call's throughput at most."""
        if concurrency < SOLO:
            return self.tolerance
        return min(self.tolerance, max(1.5, (concurrency + 1) / 2))

    def _inflation(self, costs: tuple[float, float, float]) -> float:
        """The least of the call's three readings (per call, per completion token, per token) against the
        best of each: a call that only looks slow by one measure of size is not slow."""
        ratios = [
            cost / best
            for i, cost in enumerate(costs)
            if cost > 0
            and (best := min((c[i] for c in (*self._costs, *self._solo) if c[i] > 0), default=0.0)) > 0
        ]
        return min(ratios, default=1.0)

    def _on_success(self, sample: Sample | None) -> None:
        self.progressed()
        if sample is not None:
            self._costs.append(sample.costs())
            if sample.concurrency < SOLO:
                self._solo.append(sample.costs())
                self._want_solo = False
        if self.static:
            pass
        elif self._probing:
            self._probe(sample)
        elif (
            sample is not None
            and (len(self._costs) >= 4 or self._solo)  # a baseline: a few calls, or one call alone
            and (inflation := self._inflation(sample.costs())) > (allowed := self.allowed(sample.concurrency))
        ):
            self._latency_cut(inflation, allowed)
        elif not self._waiting():
            pass  # no call waits for a permit: the limit was not what held the work back, nothing learnt
        elif self._slow_start:
            self._set(self._limit + 1)  # doubles per round trip
        else:
            self._set(self._limit + self._step / self._limit)  # +step per round trip
            if self._ceiling and self.limit > self._ceiling:
                self._step, self._ceiling = 1.0, 0  # the level that was cut holds now
        self._release()

    def _probe(self, sample: Sample | None) -> None:
        """The cold start: a call alone gives the backend's best, then two together tell whether a second
        call buys throughput. The pair is judged once both have answered, by the slower: a backend that
        serves one call at a time answers the first at solo speed while the second waits (it takes twice
        as long). Only a sample with its size informs; an answer without one (a body that is not a
        completion) leaves the probe where it is."""
        if sample is None:
            return
        if self.limit < 2 or (not self._pair and sample.concurrency < SOLO):
            self._set(2)  # the best is known (or a call ran alone again): let two run together
            return
        self._pair.append(sample)
        inflation = max(self._inflation(s.costs()) for s in self._pair)
        allowed = self.allowed(PAIR)
        if inflation > allowed:
            self._end_probe()
            self._latency_cut(
                inflation, allowed
            )  # CPU-bound or one slot: stay at 1, probe 2 ever more rarely
        elif len(self._pair) >= 2:
            self._end_probe()
            self._set(self._initial)  # two at once cost little more than one: open up, slow start goes on

    def _end_probe(self) -> None:
        self._probing = False
        self._pair.clear()

    def _on_ignored(self) -> None:
        """A call that failed for a reason that says nothing about load: the partner of a probe's pair
        answer that is still waiting can no longer be judged with it."""
        if self._probing:
            self._pair.clear()
        self._release()

    def _latency_cut(self, inflation: float, allowed: float) -> None:
        """Queueing at the backend, or concurrency that only adds latency: shrink towards what it really
        serves in parallel."""
        self._slow_start = False
        value = self._limit * max(0.5, allowed / inflation) ** 0.5
        now = time.monotonic()
        if allowed < self.tolerance and now - self._last_latency_cut >= min(c[0] for c in self._costs):
            # a second call only added latency (a CPU backend): probe above this level ever more slowly
            # (once per round trip)
            self._last_latency_cut = now
            self._step = max(MIN_STEP, self._step / 2)
            self._ceiling = max(self.limit, self.minimum + 1)  # a cut at the minimum: above it
        # calls that only ever ran together cannot tell how fast one is alone (on a CPU backend each of
        # n takes n times as long, and they all look alike): measure it once
        self._want_solo = not self._solo
        self._set(math.floor(value))

    def _on_over_capacity(self) -> None:
        """The calls still in flight are what the backend serves at once: keep exactly that many. Each
        rejected call lowers the estimate as it returns, so a burst converges within one round trip; the
        additive increase after successes probes for more capacity, one call at a time. The limit drops
        before the permit is handed on, so no waiter is let in above it."""
        self.progressed()
        if not self.static:
            self._slow_start = False
            self._end_probe()  # a backend that serves fewer than the probe's two
            still_in_flight = self._in_flight - 1  # without this rejected call
            self._set(min(self._limit, max(still_in_flight, self.minimum)))
        self._release(completed=False)

    def _on_congestion(self, concurrency: float) -> None:
        """A 5xx or a timeout on a call that ran with ``concurrency`` calls in service (time-averaged)."""
        self.progressed()
        if not self.static:
            now = time.monotonic()
            self._slow_start = False
            if self._probing and concurrency >= SOLO:
                # congestion with the pair in service: never open to the initial limit. A call that ran
                # alone (the first one, or sparse work at the pair's limit) says nothing about two
                self._end_probe()
            # one cut per round trip: a burst of 429s from one overload is one signal, not twenty
            rtt = min(c[0] for c in self._costs) if self._costs else 0.1
            if now - self._last_cut >= rtt:
                self._last_cut = now
                self._set(max(self._limit * self.backoff, self.minimum))
        self._release()
