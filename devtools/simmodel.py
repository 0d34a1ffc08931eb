"""The service models behind the LLM simulator's profiles, and the profiles themselves.

A request's *work* is what it costs alone on an idle server: ``ttft + prompt_tokens / prompt_tps +
completion_tokens / tokens_per_second`` (or a fixed ``latency`` when ``tokens_per_second`` is 0, the
simulator's original mode). What happens with several requests at once is the profile's business:

- :class:`SharedServer` serves every request in service at once, each at ``1 / f(n)`` of its solo speed
  with ``f(n) = 1 + batch_slowdown x (n - 1)`` for ``n`` requests in service (processor sharing).
  ``batch_slowdown`` 0 is independent slots; small values are a GPU batch (vLLM's decode step gets a
  little slower per sequence added); 1 is a CPU whose cores are shared (llama.cpp: n requests take n
  times as long each, so throughput stays flat).
- :class:`RateWindow` is a hosted API's budget: at most ``window_requests`` requests and
  ``window_tokens`` tokens (prompt + requested ``max_tokens``, as OpenAI counts them) per fixed window
  of ``window_seconds``; above it, 429 with the time to the next window as Retry-After.

:func:`makespan` runs the same models on a virtual clock: the ideal wall time of a batch sent at once
with perfect knowledge (what a benchmark's "ideal" column states).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Profile:
    """A named set of simulator settings and the real server it models."""

    name: str
    models: str
    settings: dict[str, Any]
    #: the concurrency a client told the capacity would use (the oracle peer's K)
    capacity: int


# Speeds are scaled so that a benchmark run takes seconds: what is modelled is the shape (how time
# depends on tokens and on the requests in service), not a given GPU. One seed-job call takes about
# 0.65 s alone on queue/sloppy, 0.13 s on cpu (14 of them in a row: 1.9 s) and 0.37 s on ratelimit.
_VLLM = {"slots": 16, "queue": 100_000, "ttft": 0.05, "prompt_tps": 8000.0, "tokens_per_second": 100.0,
         "batch_slowdown": 0.03}  # fmt: skip
_LLAMACPP = {"slots": 4, "queue": 512, "ttft": 0.02, "prompt_tps": 16000.0, "tokens_per_second": 800.0,
             "batch_slowdown": 1.0}  # fmt: skip
_HOSTED = {"slots": 1000, "queue": 0, "ttft": 0.1, "prompt_tps": 40000.0, "tokens_per_second": 200.0,
           "window_seconds": 1.0, "window_requests": 6, "window_tokens": 12000}  # fmt: skip

PROFILES: dict[str, Profile] = {
    "queue": Profile(
        "queue",
        "vLLM (continuous batching on a GPU): up to max_num_seqs sequences are batched, the rest wait in "
        "the server's queue (never 429); each decode step is a little slower per sequence added, so "
        "per-request time grows mildly with the batch while throughput grows a lot",
        _VLLM,
        capacity=16,
    ),
    "cpu": Profile(
        "cpu",
        "Ollama / llama.cpp llama-server on a few CPU cores (--parallel 4): the 4 slots share the same "
        "threads, so a request's time grows in proportion to the requests in service and throughput "
        "stays flat; requests beyond the slots wait in the server's queue",
        _LLAMACPP,
        capacity=1,
    ),
    "ratelimit": Profile(
        "ratelimit",
        "a hosted API (OpenAI-like): capacity far beyond one client, but a budget of requests and tokens "
        "per window (a minute there, scaled to 1 s here); above it 429 with Retry-After",
        _HOSTED,
        capacity=6,
    ),
    "sloppy": Profile(
        "sloppy",
        "a weak model served like the queue profile: 30% of answers invent a fact (fail the grounding "
        "check) or ignore the TITLE/SUMMARY format, as SmolLM2-135M does on the sample",
        {**_VLLM, "rate_sloppy": 0.3},
        capacity=16,
    ),
}


def solo_seconds(
    prompt_tokens: int, completion_tokens: int, *, ttft: float, prompt_tps: float, tokens_per_second: float,
    latency: float,
) -> float:  # fmt: skip
    """What one request costs alone on an idle server."""
    if not tokens_per_second:
        return latency
    prefill = prompt_tokens / prompt_tps if prompt_tps else 0.0
    return ttft + prefill + completion_tokens / tokens_per_second


def slowdown(n: int, batch_slowdown: float) -> float:
    """How many times slower each of ``n`` requests in service progresses than one alone."""
    return 1.0 + batch_slowdown * max(n - 1, 0)


class SharedServer:
    """Processor sharing: every request in service progresses at ``1 / slowdown(n)`` of its solo speed."""

    def __init__(self, batch_slowdown: float) -> None:
        self.batch_slowdown = batch_slowdown
        self._remaining: dict[asyncio.Future[None], float] = {}
        self._last = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def in_service(self) -> int:
        return len(self._remaining)

    def _advance(self) -> None:
        now = time.monotonic()
        if self._remaining:
            progress = (now - self._last) / slowdown(len(self._remaining), self.batch_slowdown)
            for fut in self._remaining:
                self._remaining[fut] -= progress
        self._last = now

    def _reschedule(self) -> None:
        for fut, left in list(self._remaining.items()):
            if left <= 1e-6:
                del self._remaining[fut]
                if not fut.done():
                    fut.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._remaining:
            delay = min(self._remaining.values()) * slowdown(len(self._remaining), self.batch_slowdown)
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._advance()
        self._reschedule()

    async def serve(self, work: float) -> None:
        """Return once ``work`` solo seconds of service were given to this request."""
        self._advance()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._remaining[fut] = work
        self._reschedule()
        try:
            await fut
        finally:
            if fut in self._remaining:  # cancelled (the client went away): leave the batch
                self._advance()
                del self._remaining[fut]
                self._reschedule()


class RateWindow:
    """A request and token budget per fixed window, counted from the first request."""

    def __init__(self, seconds: float, requests: int, tokens: int) -> None:
        self.seconds, self.requests, self.tokens = seconds, requests, tokens
        self._start: float | None = None
        self._index = -1
        self._used_requests = self._used_tokens = 0

    def admit(self, tokens: int) -> float | None:
        """None when the request fits the current window (and is counted), else seconds to wait."""
        now = time.monotonic()
        if self._start is None:
            self._start = now
        index = int((now - self._start) // self.seconds)
        if index != self._index:
            self._index, self._used_requests, self._used_tokens = index, 0, 0
        over_requests = self.requests and self._used_requests + 1 > self.requests
        over_tokens = self.tokens and self._used_requests and self._used_tokens + tokens > self.tokens
        if over_requests or over_tokens:
            return self._start + (index + 1) * self.seconds - now
        self._used_requests += 1
        self._used_tokens += tokens
        return None


def makespan(
    works: Sequence[float], *, slots: int, batch_slowdown: float = 0.0, window_seconds: float = 0.0,
    window_requests: int = 0, concurrency: int | None = None,
) -> tuple[float, float]:  # fmt: skip
    """(time of the first completion, time of the last) for ``works`` sent in order by a client that
    keeps ``concurrency`` (default: all) requests at the server, on a virtual clock. With a window, a
    client knowing the budget sends each request at the start of the first window with room for it."""
    limit = min(concurrency or len(works), slots) if works else 1
    pending = list(works)
    t, first, last = 0.0, math.inf, 0.0
    active: list[float] = []  # remaining solo work of the requests in service
    sent_in_window: dict[int, int] = {}
    releases: list[float] = []  # when a request was admitted later by the window
    while pending or active:
        # admit as many as the concurrency and the window allow, at time t
        while pending and len(active) < limit:
            if window_seconds and window_requests:
                index = int(t // window_seconds + 1e-9)
                if sent_in_window.get(index, 0) >= window_requests:
                    heapq.heappush(releases, (index + 1) * window_seconds)
                    break
                sent_in_window[index] = sent_in_window.get(index, 0) + 1
            active.append(pending.pop(0))
        factor = slowdown(len(active), batch_slowdown)
        next_done = t + min(active) * factor if active else math.inf
        next_release = releases[0] if releases else math.inf
        step_to = min(next_done, next_release)
        progress = (step_to - t) / factor if active else 0.0
        active = [left - progress for left in active]
        t = step_to
        while releases and releases[0] <= t + 1e-9:
            heapq.heappop(releases)
        done = [left for left in active if left <= 1e-9]
        if done:
            first = min(first, t)
            last = t
            active = [left for left in active if left > 1e-9]
    return first, last


def chain_makespan(chains: Sequence[Sequence[float]], *, slots: int, batch_slowdown: float = 0.0) -> float:
    """The time the last of ``chains`` ends on a virtual clock, each chain a request followed by the
    requests that could only be sent once its answer was read (a regeneration after a rejected answer).
    Every chain's first request is sent at once; at most ``slots`` are in service, the rest wait in
    order. (No window budget: the profiles whose answers are checked and regenerated have none.)"""
    waiting = [(i, 0) for i, chain in enumerate(chains) if chain]  # (chain, step) ready to be served
    active: dict[tuple[int, int], float] = {}  # remaining solo work of the requests in service
    t = last = 0.0
    while waiting or active:
        while waiting and len(active) < slots:
            i, step = waiting.pop(0)
            active[i, step] = chains[i][step]
        factor = slowdown(len(active), batch_slowdown)
        step_s = min(active.values()) * factor
        t += step_s
        for key in list(active):
            active[key] -= step_s / factor
            if active[key] <= 1e-9:
                del active[key]
                i, step = key
                if step + 1 < len(chains[i]):
                    waiting.append((i, step + 1))
                last = t
    return last
