"""Stubs for the CLI, with errors that name the unreachable service and its address, and a deadline on
every unary call (``RPC_TIMEOUT``) so that a service that stops answering is named, not waited on."""

from __future__ import annotations

import re
import socket
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


# exit codes (the README's table lists them)
JOB_NOT_DONE = 1  # the job ended failed or cancelled
REJECTED = 2  # bad usage, or a service rejected the request (invalid field, unknown id, already ended)
UNREACHABLE = 3  # a service could not be reached
INTERRUPTED = 130  # Ctrl-C

UNREACHABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]/\s]+):(\d{1,5})$")


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code ``code``."""

    def __init__(self, message: str, code: int = JOB_NOT_DONE) -> None:
        super().__init__(message)
        self.code = code


def check_address(option: str, address: str) -> str:
    """``HOST:PORT`` (or a gRPC target with a scheme, such as ``dns:///host:port``); exit 2 otherwise."""
    if "://" in address or address.startswith(("unix:", "ipv4:", "ipv6:")):
        return address
    match = ADDRESS.match(address)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise CliError(f"{option} {address!r}: expected HOST:PORT, for example 127.0.0.1:50053", REJECTED)
    return address


def unreachable_reason(address: str, detail: str) -> str:
    """gRPC's detail, or the resolver's own message when gRPC leaves it empty ("errors resolving x: ")."""
    match = ADDRESS.match(address)
    if match is not None and ("resolv" in detail.lower() or not detail.strip()):
        host, port = match.group(1).strip("[]"), int(match.group(2))
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            return f"cannot resolve host {host!r}: {exc.strerror or exc}"
    return detail.strip() or "no reason given"


def rpc_error(service: str, address: str, exc: grpc.aio.AioRpcError) -> CliError:
    """The CliError for a failed call: unreachable (exit 3) or rejected with the service's reason (exit 2)."""
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return CliError(f"the {service} service at {address} timed out ({exc.details()})", UNREACHABLE)
    if exc.code() in UNREACHABLE_CODES:
        reason = unreachable_reason(address, exc.details() or "")
        return CliError(f"the {service} service at {address} is unreachable ({reason})", UNREACHABLE)
    return CliError(f"{exc.details()} ({service}: {exc.code().name})", REJECTED)


async def call(service: str, address: str, fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return await fn()
    except grpc.aio.AioRpcError as exc:
        raise rpc_error(service, address, exc) from None


def store_stub(address: str) -> tuple[grpc.aio.Channel, StoreStub]:
    channel = open_channel(check_address("--store", address), interceptors=[Deadline()])
    return channel, store_pb2_grpc.StoreServiceStub(channel)


def synth_stub(address: str) -> tuple[grpc.aio.Channel, SynthStub]:
    channel = open_channel(check_address("--synthesizer", address), interceptors=[Deadline()])
    return channel, synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
