"""Latency matters as much as errors: on a CPU-bound backend (llama.cpp on a few cores) more concurrency
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
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: a call whose time-averaged concurrency is below this ran (mostly) alone
SOLO = 1.5

Costs = tuple[float, float, float]


@dataclass(frozen=True)
class Sample:
    """One served call: its latency, its size and the calls in service with it (time-averaged)."""

    latency: float
    prompt_tokens: int
    completion_tokens: int
    concurrency: float

    def costs(self) -> Costs:
        """Seconds per call, per completion token and per token (0 where the size is unknown)."""
        tokens = self.prompt_tokens + self.completion_tokens
        return (
            self.latency,
            self.latency / self.completion_tokens if self.completion_tokens > 0 else 0.0,
            self.latency / tokens if tokens > 0 else 0.0,
        )


class Baseline:
    """The backend's best, from the recent calls and the recent calls that ran alone, and how far a call
    may fall behind it."""

    def __init__(self, tolerance: float, window: int) -> None:
        self.tolerance = tolerance
        #: (per call, per completion token, per token) of the recent samples
        self._costs: deque[Costs] = deque(maxlen=window)
        #: costs of the recent calls that ran alone (kept beyond the window: the backend's real best)
        self._solo: deque[Costs] = deque(maxlen=16)
        #: a latency cut with no call ever seen alone: the next call runs alone, to measure the best
        self.want_solo = False

    def add(self, sample: Sample) -> None:
        self._costs.append(sample.costs())
        if sample.concurrency < SOLO:
            self._solo.append(sample.costs())
            self.want_solo = False

    @property
    def known(self) -> bool:
        """A baseline: a few calls, or one call alone."""
        return len(self._costs) >= 4 or bool(self._solo)

    def round_trip(self, default: float) -> float:
        """The fastest recent call's latency (``default`` before the first)."""
        return min(c[0] for c in self._costs) if self._costs else default

    def after_cut(self) -> None:
        """A latency cut: calls that only ever ran together cannot tell how fast one is alone (on a CPU
        backend each of n takes n times as long, and they all look alike): measure it once."""
        self.want_solo = not self._solo

    def allowed(self, concurrency: float) -> float:
        """How many times its best a call may take with ``concurrency`` calls in service before the limit
        shrinks: ``tolerance`` alone (nothing to blame but the backend's own queue), else (c + 1) / 2
        within [1.5, tolerance]: at c = 2, 1.5 times slower means the second call bought a third of a
        call's throughput at most."""
        if concurrency < SOLO:
            return self.tolerance
        return min(self.tolerance, max(1.5, (concurrency + 1) / 2))

    def inflation(self, costs: Costs) -> float:
        """The least of the call's three readings (per call, per completion token, per token) against the
        best of each: a call that only looks slow by one measure of size is not slow."""
        ratios = [
            cost / best
            for i, cost in enumerate(costs)
            if cost > 0
            and (best := min((c[i] for c in (*self._costs, *self._solo) if c[i] > 0), default=0.0)) > 0
        ]
        return min(ratios, default=1.0)
