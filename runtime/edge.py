"""The edge of every storywire server: one gRPC interceptor that checks the caller's token, refuses
undecodable and invalid requests, and maps whatever a handler raises to a status code.

For every RPC of a ``storywire.*`` service (health and reflection pass through untouched):

1. the bearer token, by :class:`runtime.security.TokenPolicy` -> ``UNAUTHENTICATED`` /
   ``PERMISSION_DENIED`` before the request is read;
2. decoding: bytes that are not the request message (invalid UTF-8 in a string, a corrupt wire format)
   -> ``INVALID_ARGUMENT`` naming the field when it can be found, where gRPC alone answers ``UNKNOWN``;
3. validation of every message (each message of a request stream as it is read) against the API's
   rules (:mod:`runtime.rules`) -> ``INVALID_ARGUMENT`` naming the field;
4. errors: :meth:`runtime.errors.ErrorMap.status` gives each exception its code; an unexpected one is
   ``INTERNAL`` with an error id that the log line carries, never the exception's text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message

from runtime.errors import ErrorMap, InvalidArgumentError, RequestError
from runtime.security import TokenPolicy
from runtime.validation import Validator, locate_bad_utf8

__all__ = ["Edge"]

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Context = grpc.aio.ServicerContext
    Handler = grpc.RpcMethodHandler


@dataclass(frozen=True)
class Undecodable:
    """Stands for a request message that did not parse (the deserializer must not raise)."""

    error: InvalidArgumentError


def _safe_deserializer(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    message_class = getattr(deserialize, "__self__", None)  # the generated X.FromString

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as exc:
            descriptor = getattr(message_class, "DESCRIPTOR", None)
            field = locate_bad_utf8(descriptor, data) if descriptor is not None else None
            if field:
                return Undecodable(InvalidArgumentError(field, "is not valid UTF-8"))
            name = descriptor.full_name if descriptor is not None else "request"
            return Undecodable(InvalidArgumentError("", f"the request is not a valid {name} message: {exc}"))

    return parse


class Edge(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: TokenPolicy, errors: ErrorMap, validator: Validator) -> None:
        self.tokens = tokens
        self.errors = errors
        self.validator = validator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        parts = details.method.split("/")
        service = parts[1] if len(parts) == 3 else ""
        if handler is None or not service.startswith("storywire."):
            return handler
        refusal = self.tokens.check(service, tuple(details.invocation_metadata or ()))
        if refusal is not None:
            return _refusing(handler, refusal)
        return _Guard(self, details.method).wrap(handler)

    def check(self, message: Any, path: str = "") -> None:
        if isinstance(message, Undecodable):
            error = message.error
            if path:
                error = InvalidArgumentError(
                    f"{path}{error.field}" if error.field else path.rstrip("."), error.reason
                )
            raise error
        if isinstance(message, Message):
            self.validator.check(message, path)

    async def fail(self, context: Context, exc: Exception, method: str) -> NoReturn:
        if isinstance(exc, grpc.aio.AbortError):  # the handler set its status itself
            raise exc
        code, message = self.errors.status(exc, method)
        await context.abort(code, message)
        raise AssertionError("unreachable: abort raises")  # pragma: no cover


class _Guard:
    """Wraps one RPC's behaviour (the four shapes of gRPC methods)."""

    def __init__(self, edge: Edge, method: str) -> None:
        self.edge = edge
        self.method = method

    def wrap(self, handler: Handler) -> Handler:
        h: Any = handler
        replaced: dict[str, Any] = {"request_deserializer": _safe_deserializer(h.request_deserializer)}
        if h.unary_unary is not None:
            replaced["unary_unary"] = self._unary_unary(h.unary_unary)
        elif h.unary_stream is not None:
            replaced["unary_stream"] = self._unary_stream(h.unary_stream)
        elif h.stream_unary is not None:
            replaced["stream_unary"] = self._stream_unary(h.stream_unary)
        elif h.stream_stream is not None:
            replaced["stream_stream"] = self._stream_stream(h.stream_stream)
        return h._replace(**replaced)  # type: ignore[no-any-return]

    def _checked(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async def gen() -> AsyncIterator[Any]:
            index = 0
            async for message in requests:
                self.edge.check(message, f"stream[{index}].")
                index += 1
                yield message

        return gen()

    def _unary_unary(self, behaviour: Any) -> Any:
        async def call(request: Any, context: Context) -> Any:
            try:
                self.edge.check(request)
                return await behaviour(request, context)
            except Exception as exc:
                await self.edge.fail(context, exc, self.method)

        return call

    def _unary_stream(self, behaviour: Any) -> Any:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                self.edge.check(request)
                async with aclosing(behaviour(request, context)) as responses:  # closed in this task
                    async for response in responses:
                        yield response
            except Exception as exc:
                await self.edge.fail(context, exc, self.method)

        return call

    def _stream_unary(self, behaviour: Any) -> Any:
        async def call(requests: AsyncIterator[Any], context: Context) -> Any:
            try:
                return await behaviour(self._checked(requests), context)
            except Exception as exc:
                await self.edge.fail(context, exc, self.method)

        return call

    def _stream_stream(self, behaviour: Any) -> Any:
        async def call(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            try:
                async with aclosing(behaviour(self._checked(requests), context)) as responses:
                    async for response in responses:
                        yield response
            except Exception as exc:
                await self.edge.fail(context, exc, self.method)

        return call


def _refusing(handler: Handler, refusal: RequestError) -> Handler:
    """A handler of the same shape that answers ``refusal`` without reading the request."""
    h: Any = handler

    async def abort(context: Context) -> list[Any]:
        await context.abort(refusal.code, str(refusal))

    async def unary(_: Any, context: Context) -> Any:
        return await abort(context)

    async def streaming(_: Any, context: Context) -> AsyncIterator[Any]:
        for nothing in await abort(context):  # an async generator that aborts before yielding
            yield nothing

    shape = "stream" if h.response_streaming else "unary"
    kind = f"{'stream' if h.request_streaming else 'unary'}_{shape}"
    return h._replace(  # type: ignore[no-any-return]
        request_deserializer=lambda _data: None, **{kind: streaming if h.response_streaming else unary}
    )
