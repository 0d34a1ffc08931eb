"""Stubs for the CLI, with errors that name the unreachable service and its address, and a deadline on
every unary call (``RPC_TIMEOUT``) so that a service that stops answering is named, not waited on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from storywire.v1 import store_pb2_grpc, synthesizer_pb2_grpc

from runtime.client import open_channel
from runtime.stubs import StoreStub
from runtime.stubs import SynthesizerStub as SynthStub

T = TypeVar("T")
RPC_TIMEOUT = 30.0  # seconds: every unary call of the CLI


class Deadline(grpc.aio.UnaryUnaryClientInterceptor):
    """Give every unary call a deadline unless the caller set one."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.timeout is None:
            details = details._replace(timeout=RPC_TIMEOUT)
        return await continuation(details, request)


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


async def call(service: str, address: str, fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return await fn()
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise CliError(f"the {service} service at {address} timed out ({exc.details()})", 3) from None
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            raise CliError(
                f"the {service} service at {address} is unreachable ({exc.details()})", 3
            ) from None
        raise CliError(f"{service}: {exc.code().name}: {exc.details()}", 2) from None


def store_stub(address: str) -> tuple[grpc.aio.Channel, StoreStub]:
    channel = open_channel(address, interceptors=[Deadline()])
    return channel, store_pb2_grpc.StoreServiceStub(channel)


def synth_stub(address: str) -> tuple[grpc.aio.Channel, SynthStub]:
    channel = open_channel(address, interceptors=[Deadline()])
    return channel, synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
