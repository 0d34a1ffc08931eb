"""One retry policy for every retry loop of storywire except the LLM's (which is tied to the concurrency
limiter: :mod:`services.synthesizer.llm.caller`).

Built on `stamina` (exponential backoff with jitter, instrumented: every scheduled retry is logged and
counted). The policies live here, in one place; a loop picks one by what it retries:

- :data:`TRANSIENT` for one operation that may fail briefly (an HTTP request, a database batch): a few
  attempts, short waits.
- :func:`reconnect` for a connection that must come back however long it takes (the store's pool, its
  LISTEN connection, the worker's claim loop): no attempt limit, the wait capped by a setting.

The exception filter may return a number instead of ``True``: that many seconds is the wait for this
retry (a server's Retry-After), instead of the exponential backoff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import stamina

__all__ = ["TRANSIENT", "Backoff", "Filter", "reconnect"]

#: an exception class, a tuple of them, or a hook: exception -> retry? (False / True / seconds to wait)
Filter = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool | float]


@dataclass(frozen=True)
class Backoff:
    """Wait ``min(maximum, initial * 2 ** (retry - 1) + uniform(0, jitter))`` between attempts."""

    attempts: int | None = 4
    initial: float = 0.2
    maximum: float = 5.0
    jitter: float = 0.1
    #: seconds for all attempts together (None = no limit besides ``attempts``)
    timeout: float | None = None

    def retries(self, on: Filter) -> AsyncIterator[stamina.Attempt]:
        """``async for attempt in policy.retries(on): with attempt: ...`` runs the block until it
        succeeds, raises an exception ``on`` rejects, or the attempts or the time are used up (then the
        last exception propagates)."""
        return stamina.retry_context(
            on=on,
            attempts=self.attempts,
            timeout=self.timeout,
            wait_initial=self.initial,
            wait_max=self.maximum,
            wait_jitter=self.jitter,
            wait_exp_base=2,
        )

    def with_attempts(self, attempts: int | None) -> Backoff:
        return replace(self, attempts=attempts)


#: one operation that may fail briefly
TRANSIENT = Backoff()


def reconnect(max_wait: float) -> Backoff:
    """A connection that must come back: unlimited attempts, waits growing to ``max_wait`` seconds."""
    return Backoff(attempts=None, initial=0.1, maximum=max_wait, jitter=0.1 * max_wait)
