"""Adaptive concurrency for LLM calls: slow start, then additive increase while latency stays near its
baseline, multiplicative decrease on congestion (429, 5xx, timeouts) or on latency inflation. The limit
grows only while calls wait for a permit: a limit that held nothing back has not been tested.

- After a cut by that concurrency rule the additive increase slows (halved per round trip that cuts,
  down to 1/64 of a call per round trip) until the limit has held the level that was cut, so the
  limiter does not keep probing a level that already proved too much.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from services.synthesizer.llm.latency import Baseline, Sample

HISTORY = 1024  # limit changes kept in AdaptiveLimiter.history
#: the slowest additive increase after repeated latency cuts: 1/64 of a call per round trip
MIN_STEP = 1 / 64
#: a round trip before any call has answered (congestion cuts once per round trip)
FIRST_ROUND_TRIP = 0.1


class AimdLimit:
    """The adaptive limit: how many calls may be in service at once, moved by what each outcome says."""

    def __init__(
        self,
        start: float,
        minimum: int,
        maximum: int,
        *,
        slow_start: bool,
        backoff: float,
        baseline: Baseline,
        clock: Callable[[], float],
    ) -> None:
        self.minimum, self.maximum, self.backoff = minimum, maximum, backoff
        self.baseline, self._clock = baseline, clock
        self._limit = start
        self._slow_start = slow_start
        self._last_cut = self._last_latency_cut = 0.0
        #: additive increase per round trip (halved by each cut of the concurrency rule) and the limit cut
        self._step, self._ceiling = 1.0, 0
        #: (monotonic time, limit) after every change, for tests and the limit-over-time trace; the latest
        #: HISTORY changes only, so that it does not grow for the life of the process
        self.history: deque[tuple[float, int]] = deque([(clock(), self.limit)], maxlen=HISTORY)

    @property
    def limit(self) -> int:
        return max(self.minimum, int(self._limit))

    def set(self, value: float) -> None:
        before = self.limit
        self._limit = min(max(value, self.minimum), self.maximum)
        if self.limit != before:
            self.history.append((self._clock(), self.limit))

    def settle(self) -> None:
        """Work arrives after an idle spell: a limit that has climbed back to a level the concurrency rule
        cut is a probe, not a known capacity, so the new burst starts just below it (the additive increase
        probes again within the burst). A probe at a burst's start would hold back its first answer: on a
        CPU-bound backend the first two calls each take twice as long."""
        if self._ceiling and self.limit >= self._ceiling:
            self.set(self._ceiling - 1)

    def success(self, sample: Sample | None, waiting: Callable[[], bool]) -> None:
        """A served call (its sample already in the baseline): a latency cut if it took too long, else
        growth while calls wait for a permit."""
        baseline = self.baseline
        if (
            sample is not None
            and baseline.known
            and (inflation := baseline.inflation(sample.costs()))
            > (allowed := baseline.allowed(sample.concurrency))
        ):
            self.latency_cut(inflation, allowed)
        elif not waiting():
            pass  # no call waits for a permit: the limit was not what held the work back, nothing learnt
        elif self._slow_start:
            self.set(self._limit + 1)  # doubles per round trip
        else:
            self.set(self._limit + self._step / self._limit)  # +step per round trip
            if self._ceiling and self.limit > self._ceiling:
                self._step, self._ceiling = 1.0, 0  # the level that was cut holds now

    def latency_cut(self, inflation: float, allowed: float) -> None:
        """Queueing at the backend, or concurrency that only adds latency: shrink towards what it really
        serves in parallel."""
        self._slow_start = False
        value = self._limit * max(0.5, allowed / inflation) ** 0.5
        now = self._clock()
        round_trip = self.baseline.round_trip(FIRST_ROUND_TRIP)
        if allowed < self.baseline.tolerance and now - self._last_latency_cut >= round_trip:
            # a second call only added latency (a CPU backend): probe above this level ever more slowly
            # (once per round trip)
            self._last_latency_cut = now
            self._step = max(MIN_STEP, self._step / 2)
            self._ceiling = max(self.limit, self.minimum + 1)  # a cut at the minimum: above it
        self.baseline.after_cut()
        self.set(math.floor(value))

    def over_capacity(self, still_in_flight: int) -> None:
        """A 429 with ``still_in_flight`` other calls in service: they are what the backend serves at once,
        so keep exactly that many."""
        self._slow_start = False
        self.set(min(self._limit, max(still_in_flight, self.minimum)))

    def congestion(self) -> None:
        """A 5xx or a timeout: cut multiplicatively, once per round trip (a burst of 429s from one
        overload is one signal, not twenty)."""
        now = self._clock()
        self._slow_start = False
        rtt = self.baseline.round_trip(FIRST_ROUND_TRIP)
        if now - self._last_cut >= rtt:
            self._last_cut = now
            self.set(max(self._limit * self.backoff, self.minimum))
