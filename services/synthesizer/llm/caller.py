"""One LLM call made resilient: a concurrency permit from the adaptive limiter, retries with backoff and
jitter (or the server's Retry-After), and capacity handling for 429s. Every permit is given back on
every path (success, error, cancellation, timeout) by construction: the ``finally`` below.

The answer's validation is the caller's business (``parse``): an answer that fails it (or a body that is
not a chat completion at all, or a story that then fails the grounding check) still freed a slot the
backend served, so it counts as a capacity sample for the limiter: after a burst of faults the limit
climbs back to what the backend serves even while answers are being rejected.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from opentelemetry import trace

from runtime.logging import get_logger
from services.synthesizer.llm.client import ChatRequest, Completion, OpenAIClient
from services.synthesizer.llm.errors import BadResponseError, LLMError, RateLimitedError
from services.synthesizer.llm.limiter import AdaptiveLimiter, Permit

log = get_logger(__name__)
tracer = trace.get_tracer("storywire.synthesizer")
#: 429s answered while other calls were in flight, retried through the limiter without using attempts
MAX_CAPACITY_RETRIES = 100

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        if retry_after is not None:
            return float(min(retry_after, self.max_delay)) + jitter / 10
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1))) * jitter


@dataclass
class Spent:
    """Tokens of every completion received for one story, including answers that were then rejected."""

    prompt: int = 0
    completion: int = 0
    estimated: bool = False
    completions: list[Completion] = field(default_factory=list)

    def add(self, c: Completion) -> None:
        self.prompt += c.prompt_tokens
        self.completion += c.completion_tokens
        self.estimated = self.estimated or c.estimated


@dataclass(frozen=True)
class Answer(Generic[T]):
    completion: Completion
    attempts: int
    value: T


async def hand_over() -> None:
    """Let the call that a freed permit let in reach the backend before this one parses and checks its
    answer (at a limit of 1 the backend idles through that work). Its task starts the request in one
    pass of the event loop, and aiohttp writes the request (headers and body together) in a task of its
    own, which runs a pass later on Python 3.11 (eagerly from 3.12): two passes. With one, the next
    request left after the parse and the grounding check, 5 to 10 ms later per call at a limit of 1."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class ResilientCaller:
    def __init__(self, client: OpenAIClient, limiter: AdaptiveLimiter, retry: RetryPolicy | None = None):
        self.client = client
        self.limiter = limiter
        self.retry = retry or RetryPolicy()

    def _window(self, exc: LLMError) -> float | None:
        """The seconds a 429 asks to wait when they are a rate window's precise end: a Retry-After with a
        fraction of a second, up to ``max_delay`` (HTTP's is whole seconds; a server that sends 0.63 has
        measured it, while a whole second is at best rounded up, and a capacity 429's slot frees sooner)."""
        wait = exc.retry_after
        if not isinstance(exc, RateLimitedError) or wait is None or wait > self.retry.max_delay:
            return None
        return wait if wait != int(wait) else None

    async def _turned_away(self, exc: LLMError, permit: Permit) -> bool:
        """A 429 while other calls are in flight (over capacity: the limit drops to them) or with a rate
        window's precise end (every call waits for it): the permit goes back and the call is retried
        without using an attempt. False for any other error."""
        if not isinstance(exc, RateLimitedError):
            return False
        window = self._window(exc)
        over_capacity = self.limiter.in_flight > 1
        if not over_capacity and window is None:
            return False
        if window is not None:
            self.limiter.pause(window)  # before the permit goes back: no waiter slips in
        if over_capacity:
            permit.over_capacity()
        else:
            permit.ignore()
        if self.limiter.static and window is None:
            await self.limiter.next_release(self.retry.delay(1, exc.retry_after))
        return True

    async def call(
        self, request: ChatRequest, parse: Callable[[str], T | None], spent: Spent, *, what: str = "answer"
    ) -> Answer[T]:
        """Attempts until success or a permanent failure (raised with ``attempts`` set).

        A 429 while other calls are in flight means "we sent more than the backend serves at once": the
        limit drops to what is in flight and the call waits for a permit (freed as calls complete, i.e. at
        the backend's real pace) rather than sleeping Retry-After (whole seconds, often many calls long);
        with a static limit it waits for the next call to complete instead. Such capacity retries do not
        use up attempts. A 429 with nothing else in flight is a real rate limit: Retry-After is honoured.
        A 429 whose Retry-After has a fraction of a second (a rate window's end, measured by the server)
        pauses every call until then, then retries as a capacity retry.
        """
        attempt = capacity_retries = 0
        while True:
            attempt += 1
            permit = await self.limiter.acquire()
            delay = 0.0
            try:
                with tracer.start_as_current_span("llm.call") as span:
                    span.set_attribute("storywire.llm.attempt", attempt + capacity_retries)
                    span.set_attribute("storywire.llm.concurrency_limit", permit.limit_at_start)
                    span.set_attribute("storywire.llm.model", request.model)
                    span.set_attribute("storywire.cache.tier", "miss")
                    try:
                        completion = await self.client.complete(request)
                        spent.add(completion)
                        # the backend answered: a capacity sample, whatever the answer says
                        permit.success(
                            completion.latency_s, completion.prompt_tokens, completion.completion_tokens
                        )
                        await hand_over()
                        value = parse(completion.text)
                        if value is None:
                            raise BadResponseError(
                                f"{what} not in the expected format: {completion.text[:60]!r}"
                            )
                    except LLMError as exc:
                        self.limiter.progressed()  # the call ended (an answer or a timeout): not stuck
                        span.set_attribute("storywire.llm.error", type(exc).__name__)
                        if capacity_retries < MAX_CAPACITY_RETRIES and await self._turned_away(exc, permit):
                            capacity_retries += 1
                            attempt -= 1
                            continue
                        if exc.congestion:
                            permit.congestion()
                        elif isinstance(exc, BadResponseError):
                            permit.success()  # a body that is not a completion: still served, a sample
                        else:
                            permit.ignore()
                        # an answer in the wrong format is rarely fixed by asking again the same way
                        limit = (
                            min(2, self.retry.max_attempts)
                            if isinstance(exc, BadResponseError)
                            else self.retry.max_attempts
                        )
                        if not exc.retryable or attempt >= limit:
                            exc.attempts = attempt
                            raise
                        delay = self.retry.delay(attempt, exc.retry_after)
                        log.debug(
                            "LLM call failed; retrying",
                            error=f"{type(exc).__name__}: {exc}",
                            attempt=attempt,
                            retry_in=round(delay, 2),
                        )
                    else:
                        span.set_attribute("gen_ai.usage.input_tokens", completion.prompt_tokens)
                        span.set_attribute("gen_ai.usage.output_tokens", completion.completion_tokens)
                        return Answer(completion, attempt, value)
            finally:
                # cancellation, a timeout or any unexpected exception: the slot goes back (a no-op when
                # the permit was already settled above)
                permit.ignore()
            await asyncio.sleep(delay)
