"""What can go wrong with an LLM call, and whether retrying can help."""

from __future__ import annotations


class LLMError(Exception):
    """Base class: ``retryable`` says whether another attempt may succeed."""

    retryable = False
    #: a congestion signal: the backend is overloaded, the concurrency limit should shrink
    congestion = False

    def __init__(self, message: str, retry_after: float | None = None, status: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        #: how many attempts were made before giving up (set by the retry loop)
        self.attempts = 0


class RateLimitedError(LLMError):
    """HTTP 429 (honours Retry-After)."""

    retryable = True
    congestion = True


class ServerError(LLMError):
    """HTTP 5xx."""

    retryable = True
    congestion = True


class CallTimeoutError(LLMError):
    """Connect, read or total timeout."""

    retryable = True
    congestion = True


class UnreachableError(LLMError):
    """The backend could not be connected to."""

    retryable = True


class BadResponseError(LLMError):
    """The body was not the JSON shape of a chat completion, or the text not in the asked format."""

    retryable = True


class RequestRejectedError(LLMError):
    """HTTP 4xx other than 429: the request itself is wrong (model name, key); retrying will not help."""
