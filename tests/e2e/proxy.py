"""A gRPC proxy in front of the store that forwards every call as raw bytes (status codes included), and
can be told to accept PutStories streams and then stop reading them (a hung store, as a worker sees it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from storywire.v1 import store_pb2

#: both store APIs: the client's and the workers' (whose calls carry the service token, forwarded)
SERVICES = [store_pb2.DESCRIPTOR.services_by_name[n] for n in ("StoreService", "StoreWorkerService")]


def forwarded(context: Any) -> list[tuple[str, str]]:
    """The caller's bearer token, passed on upstream."""
    return [(k, v) for k, v in (context.invocation_metadata() or ()) if k == "authorization"]


class StoreProxy:
    def __init__(self, target: str) -> None:
        self.target = target
        self.hang_put_stories = 0  # how many of the next PutStories calls hang (-1 = all)
        self.hung = 0
        self.channel: grpc.aio.Channel | None = None
        self.server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> StoreProxy:
        self.channel = grpc.aio.insecure_channel(self.target)
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    service.full_name, {m.name: self._handler(service.full_name, m) for m in service.methods}
                )
                for service in SERVICES
            ]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
        if self.channel is not None:
            await self.channel.close()

    def _handler(self, service: str, method: Any) -> grpc.RpcMethodHandler[bytes, bytes]:
        assert self.channel is not None
        path = f"/{service}/{method.name}"
        if method.client_streaming:
            upstream: Any = self.channel.stream_unary(path)

            async def stream_unary(requests: AsyncIterator[bytes], context: Any) -> bytes:
                if method.name == "PutStories" and self.hang_put_stories != 0:
                    self.hang_put_stories -= 1 if self.hang_put_stories > 0 else 0
                    self.hung += 1
                    await asyncio.Event().wait()  # accepted, never read: until the client gives up
                try:
                    reply: bytes = await upstream(
                        requests, timeout=context.time_remaining(), metadata=forwarded(context)
                    )
                except grpc.aio.AioRpcError as exc:
                    await context.abort(exc.code(), exc.details() or "")
                return reply

            return grpc.stream_unary_rpc_method_handler(stream_unary)
        if method.server_streaming:
            upstream_stream: Any = self.channel.unary_stream(path)

            async def unary_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
                try:
                    async for reply in upstream_stream(
                        request, timeout=context.time_remaining(), metadata=forwarded(context)
                    ):
                        yield reply
                except grpc.aio.AioRpcError as exc:
                    await context.abort(exc.code(), exc.details() or "")

            return grpc.unary_stream_rpc_method_handler(unary_stream)
        upstream_unary: Any = self.channel.unary_unary(path)

        async def unary_unary(request: bytes, context: Any) -> bytes:
            try:
                reply: bytes = await upstream_unary(
                    request, timeout=context.time_remaining(), metadata=forwarded(context)
                )
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
            return reply

        return grpc.unary_unary_rpc_method_handler(unary_unary)
