"""The permit a call holds while it runs, on which it reports what the backend's answer says of its
load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.synthesizer.llm.latency import Sample

if TYPE_CHECKING:
    from services.synthesizer.llm.limiter import AdaptiveLimiter


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
        elapsed = self.limiter.now() - self.started
        area = self.limiter.area() - self.area_at_start
        return max(1.0, area / elapsed) if elapsed > 0 else float(self.limiter.in_flight)

    def success(
        self, latency: float | None = None, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> None:
        """The backend served the call; with its size, a latency sample (without, only a capacity one)."""
        if not self._done:
            self._done = True
            measured = self.limiter.now() - self.started if latency is None else latency
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
