"""Response streams closed in the RPC's own task, so that what a handler set around a ``yield`` (the
OpenTelemetry span and trace context) is undone in the context that set it.

grpc.aio drives a response-streaming handler written as an async generator with a bare ``async for``
(grpcio 1.85, ``_finish_handler_with_stream_responses``). When that loop is left early (the client
cancelled or went away while a response was being written, or the server stopped), the generator is
left suspended at its ``yield`` and is closed later, when the garbage collector finds it, by a task
that asyncio starts for that: in another ``contextvars.Context``. OpenTelemetry's aio server
interceptor keeps its server span and the caller's trace context attached across that ``yield``, so
closing it there logs two "Failed to detach context" errors with a ``ValueError: <Token ...> was
created in a different Context`` traceback each, and the span ends whenever the collector runs.
Upstream: open-telemetry/opentelemetry-python-contrib#2357 (open; no release fixes it, 0.66b2 is the
newest) and the fix proposed in grpc, grpc/grpc#42295 (open; not in grpcio 1.85.3), which this module
applies from the outside.

:class:`CloseStreamsInTask`, the first interceptor of every storywire server, gives grpc a coroutine
handler instead (grpc's reader/writer form): it writes each response of the generator with
``context.write`` (which checks for termination as grpc's own loop does) and closes the generator in a
``finally``, in the RPC's task, however the stream ends. A bare ``async for`` over a generator does not
close it either, and OpenTelemetry's interceptor iterates the stream beneath it so: the
:class:`RegisterStreams` interceptor after it hands that stream to the closer too, which closes it
after OpenTelemetry's (the edge beneath closes the servicer's with ``contextlib.aclosing``).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

import grpc

__all__ = ["CloseStreamsInTask", "RegisterStreams"]

Stream = AsyncGenerator[Any, None]
Behaviour = Callable[[Any, Any], Stream]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Any]]

#: the streams that the RPC running in this context opened beneath its outermost one
_opened: ContextVar[list[Stream] | None] = ContextVar("storywire_opened_streams", default=None)


class CloseStreamsInTask(grpc.aio.ServerInterceptor):
    """Must come first in a server's interceptors: the handler it returns is the one grpc runs."""

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        return _wrap_streaming(await continuation(details), _closing)


class RegisterStreams(grpc.aio.ServerInterceptor):
    """Goes right after an interceptor that does not close the stream beneath it (OpenTelemetry's):
    :class:`CloseStreamsInTask` then closes that stream too, after the outer ones."""

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        return _wrap_streaming(await continuation(details), _registered)


def _wrap_streaming(handler: Any, wrap: Callable[[Behaviour], Any]) -> Any:
    if handler is None or not handler.response_streaming:
        return handler
    kind = "stream_stream" if handler.request_streaming else "unary_stream"
    behaviour = getattr(handler, kind)
    if not inspect.isasyncgenfunction(behaviour):
        return handler  # a reader/writer coroutine or a sync handler: no generator to close
    return handler._replace(**{kind: wrap(behaviour)})


def _closing(behaviour: Behaviour) -> Callable[[Any, Any], Awaitable[None]]:
    async def call(request: Any, context: Any) -> None:
        opened: list[Stream] = []
        token = _opened.set(opened)
        responses = behaviour(request, context)
        try:
            async for response in responses:
                await context.write(response)
        finally:
            await responses.aclose()
            for stream in reversed(opened):
                await stream.aclose()
            _opened.reset(token)

    return call


def _registered(behaviour: Behaviour) -> Behaviour:
    # registers the stream beneath; this thin generator itself needs no closing (no context, no
    # resource: if the collector closes it later, it only closes a closed stream again), and grpc can run
    # it as it is when nothing above wraps it (a service OpenTelemetry is told not to trace)
    async def call(request: Any, context: Any) -> Stream:
        responses = behaviour(request, context)
        opened = _opened.get()
        if opened is not None:
            opened.append(responses)
        async with aclosing(responses):
            async for response in responses:
                yield response

    return call
