"""One retry policy for every retry loop of storywire except the LLM's (which is tied to the concurrency
limiter: :mod:`services.synthesizer.llm.caller`).

Built on `stamina` (exponential backoff with jitter). The policies live here, in one place; a loop picks
one by what it retries:

- :data:`TRANSIENT` for one operation that may fail briefly (an HTTP request, a database batch): a few
  attempts, short waits.
- :func:`reconnect` for a connection that must come back however long it takes (the store's pool, its
  LISTEN connection, the worker's claim loop): no attempt limit, the wait capped by a setting.

The exception filter may return a number instead of ``True``: that many seconds is the wait for this
retry (a server's Retry-After), instead of the exponential backoff.

Every scheduled retry is reported: by default as a warning log line (``retry scheduled``, with its
cause and wait); a loop that says it otherwise (the CLI on stderr, the claim loop only once an outage
lasts) passes its own ``report``, which then replaces the log line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from runtime.logging import get_logger

__all__ = ["TRANSIENT", "Backoff", "Filter", "Report", "Retry", "reconnect"]

log = get_logger(__name__)

#: an exception class, a tuple of them, or a hook: exception -> retry? (False / True / seconds to wait)
Filter = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool | float]


@dataclass(frozen=True)
class Retry:
    """A retry that has just been scheduled: the ``number``-th, after ``wait`` seconds, because of
    ``cause`` (the exception the last attempt raised)."""

    number: int
    wait: float
    cause: BaseException | None


#: what a loop does with each scheduled retry
Report = Callable[[Retry], None]


def log_retry(retry: Retry) -> None:
    log.warning(
        "retry scheduled", cause=repr(retry.cause), retry=retry.number, wait_seconds=round(retry.wait, 2)
    )


# the report of the retry loop running in this task (set only while its policy computes the next wait)
_report: ContextVar[Report] = ContextVar("storywire_retry_report", default=log_retry)


def _on_retry(details: RetryDetails) -> None:
    _report.get()(Retry(details.retry_num, details.wait_for, details.caused_by))


# stamina's own hooks would log through structlog's default (stdout, in the CLI) and twice with a report
set_on_retry_hooks([_on_retry])


@dataclass(frozen=True)
class Backoff:
    """Wait ``min(maximum, initial * 2 ** (retry - 1) + uniform(0, jitter))`` between attempts."""

    attempts: int | None = 4
    initial: float = 0.2
    maximum: float = 5.0
    jitter: float = 0.1
    #: seconds for all attempts together (None = no limit besides ``attempts``); once they have passed,
    #: a failed attempt is the last one
    timeout: float | None = None

    def retries(self, on: Filter, report: Report | None = None) -> AsyncIterator[stamina.Attempt]:
        """``async for attempt in policy.retries(on): with attempt: ...`` runs the block until it
        succeeds, raises an exception ``on`` rejects, or the attempts or the time are used up (then the
        last exception propagates). ``report`` is told of every retry before its wait."""
        return _Reported(stamina.retry_context(on, **self._waits()).__aiter__(), report or log_retry)

    def retries_blocking(self, on: Filter, report: Report | None = None) -> Iterator[stamina.Attempt]:
        """The same for blocking code (``for attempt in ...``; the waits block the thread)."""
        attempts = iter(stamina.retry_context(on, **self._waits()))
        while True:
            token = _report.set(report or log_retry)
            try:
                attempt = next(attempts, None)
            finally:
                _report.reset(token)
            if attempt is None:
                return
            yield attempt

    def _waits(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "timeout": self.timeout,
            "wait_initial": self.initial,
            "wait_max": self.maximum,
            "wait_jitter": self.jitter,
            "wait_exp_base": 2,
        }

    def with_attempts(self, attempts: int | None) -> Backoff:
        return replace(self, attempts=attempts)

    def with_timeout(self, timeout: float | None) -> Backoff:
        return replace(self, timeout=timeout)


class _Reported:
    """The attempts of a stamina retry context, with ``report`` in force while each next one is
    prepared (stamina runs its retry hooks there, in this task, before it waits)."""

    def __init__(self, attempts: AsyncIterator[stamina.Attempt], report: Report) -> None:
        self._attempts = attempts
        self._report = report

    def __aiter__(self) -> _Reported:
        return self

    async def __anext__(self) -> stamina.Attempt:
        token = _report.set(self._report)
        try:
            return await self._attempts.__anext__()
        finally:
            _report.reset(token)


#: one operation that may fail briefly
TRANSIENT = Backoff()


def reconnect(max_wait: float) -> Backoff:
    """A connection that must come back: unlimited attempts, waits growing to ``max_wait`` seconds."""
    return Backoff(attempts=None, initial=0.1, maximum=max_wait, jitter=0.1 * max_wait)
