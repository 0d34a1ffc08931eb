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
newest) and the fix proposed in grpc, grpc/grpc#42295 (open; not in grpcio 1.85.1, the pinned
version), which this module applies from the outside.

:class:`CloseStreamsInTask`, the first interceptor of every storywire server, gives grpc a coroutine
handler instead (grpc's reader/writer form): it writes each response of the generator with
``context.write`` (which checks for termination as grpc's own loop does) and closes the generator in a
``finally``, in the RPC's task, however the stream ends. A bare ``async for`` over a generator does not
close it either, and OpenTelemetry's interceptor iterates the stream beneath it so: the
:class:`AdaptStreams` interceptor after it hands that stream to the closer too (the edge beneath closes
the servicer's with ``contextlib.aclosing``). It also gives a
handler written in the reader/writer form (a coroutine that writes with ``context.write``: grpc's
health ``Watch``) the async-generator form that OpenTelemetry's interceptor requires: it iterates every
response-streaming behaviour, and a coroutine failed with "TypeError: 'async for' requires an object
with __aiter__ method, got coroutine" (open-telemetry/opentelemetry-python-contrib#3066, open).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack, aclosing
from contextvars import ContextVar
from typing import Any

import grpc

__all__ = ["AdaptStreams", "CloseStreamsInTask"]

Stream = AsyncGenerator[Any, None]
Behaviour = Callable[[Any, Any], Stream]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Any]]

#: closes the streams of the RPC running in this context (set by CloseStreamsInTask)
_opened: ContextVar[AsyncExitStack | None] = ContextVar("storywire_opened_streams", default=None)


class CloseStreamsInTask(grpc.aio.ServerInterceptor):
    """Must come first in a server's interceptors: the handler it returns is the one grpc runs."""

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        return _wrap_streaming(await continuation(details), _closing)


class AdaptStreams(grpc.aio.ServerInterceptor):
    """Goes right after OpenTelemetry's interceptor, which neither closes the stream beneath it nor runs
    a reader/writer handler: :class:`CloseStreamsInTask` closes that stream too, and a reader/writer
    handler runs as a generator that yields nothing (it writes by itself)."""

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = _wrap_streaming(await continuation(details), _as_generator, inspect.iscoroutinefunction)
        return _wrap_streaming(handler, _registered)


def _wrap_streaming(
    handler: Any, wrap: Callable[[Any], Any], applies: Callable[[Any], bool] = inspect.isasyncgenfunction
) -> Any:
    """``handler`` with its response-streaming behaviour wrapped, when ``applies`` to it (by default:
    an async generator function; a sync handler or a reader/writer coroutine has no generator)."""
    if handler is None or not handler.response_streaming:
        return handler
    kind = "stream_stream" if handler.request_streaming else "unary_stream"
    behaviour = getattr(handler, kind)
    if not applies(behaviour):
        return handler
    return handler._replace(**{kind: wrap(behaviour)})


def _closing(behaviour: Behaviour) -> Callable[[Any, Any], Awaitable[None]]:
    async def call(request: Any, context: Any) -> None:
        async with AsyncExitStack() as streams:  # closes every stream of the RPC, in this task
            streams.callback(_opened.reset, _opened.set(streams))
            responses = behaviour(request, context)
            streams.push_async_callback(responses.aclose)
            async for response in responses:
                await context.write(response)

    return call


def _registered(behaviour: Behaviour) -> Behaviour:
    # registers the stream beneath; this thin generator itself needs no closing (no context, no
    # resource: if the collector closes it later, it only closes a closed stream again), and grpc can run
    # it as it is when nothing above wraps it (a service OpenTelemetry is told not to trace)
    async def call(request: Any, context: Any) -> Stream:
        responses = behaviour(request, context)
        opened = _opened.get()
        if opened is not None:
            opened.push_async_callback(responses.aclose)
        async with aclosing(responses):
            async for response in responses:
                yield response

    return call


def _as_generator(behaviour: Callable[[Any, Any], Awaitable[None]]) -> Behaviour:
    async def call(request: Any, context: Any) -> Stream:
        await behaviour(request, context)  # it writes its responses itself
        nothing: tuple[Any, ...] = ()
        for response in nothing:  # an async generator that yields nothing
            yield response

    return call
