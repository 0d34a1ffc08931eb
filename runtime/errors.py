"""Errors a request can end with, and the one table that maps exceptions to gRPC status codes.

Handlers raise; they never build a status themselves. The runtime's edge interceptor
(:mod:`runtime.edge`) turns what escapes a handler into a status with :meth:`ErrorMap.status`:

- a :class:`RequestError` (the runtime's own, e.g. :class:`InvalidArgumentError`) carries its code;
- a service's domain error is listed in the :class:`ErrorMap` the service declares, with its code and,
  for errors whose text is internal (a driver's exception), a fixed public message;
- anything else is an internal error: ``INTERNAL`` with a fresh error id, and the log line (with the
  exception and its traceback) carries the same id. Exception text never reaches a client.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from runtime.logging import get_logger

__all__ = [
    "ErrorMap",
    "InvalidArgumentError",
    "Mapped",
    "PermissionDeniedError",
    "RequestError",
    "UnauthenticatedError",
]

log = get_logger(__name__)


class RequestError(Exception):
    """An error whose message is meant for the client, with its gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT


class InvalidArgumentError(RequestError, ValueError):
    """A request field is invalid; ``str()`` is ``field: reason``."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class UnauthenticatedError(RequestError):
    """No credentials, or wrong ones."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(RequestError):
    """Valid credentials that do not allow this RPC."""

    code = grpc.StatusCode.PERMISSION_DENIED


@dataclass(frozen=True)
class Mapped:
    """Exceptions of ``types`` end with ``code``; with ``message`` set, the client gets that fixed text
    (plus the error id of the log line) instead of the exception's own text."""

    types: tuple[type[BaseException], ...]
    code: grpc.StatusCode
    message: str | None = None


class ErrorMap:
    """Exception -> (status code, client message), in declaration order (first match wins)."""

    def __init__(self, entries: Iterable[Mapped] = ()) -> None:
        self.entries = tuple(entries)

    def status(self, exc: BaseException, method: str) -> tuple[grpc.StatusCode, str]:
        if isinstance(exc, RequestError):
            return exc.code, str(exc)
        for entry in self.entries:
            if isinstance(exc, entry.types):
                if entry.message is None:
                    return entry.code, str(exc)
                error_id = _error_id()
                log.warning(
                    entry.message, method=method, error_id=error_id, error=f"{type(exc).__name__}: {exc}"
                )
                return entry.code, f"{entry.message} (error id {error_id})"
        error_id = _error_id()
        log.error(
            "internal error", method=method, error_id=error_id, exc_info=(type(exc), exc, exc.__traceback__)
        )
        return (
            grpc.StatusCode.INTERNAL,
            f"internal error (error id {error_id}); the server log has the details",
        )


def _error_id() -> str:
    return uuid.uuid4().hex[:16]
