"""Helpers shared by tests: service subprocesses, health and reflection probes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from devtools.health import wait_healthy
from devtools.services import ServiceProcess
from devtools.stack import StackInfo
from runtime.client import ClientSecurity

__all__ = [
    "ServiceProcess",
    "fresh_database",
    "health_status",
    "reflected_services",
    "serving_process",
    "wait_serving",
]


async def fresh_database(stack: StackInfo) -> str:
    """A new, empty database on the session's PostgreSQL; its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(stack.postgres_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return stack.postgres_dsn.rsplit("/", 1)[0] + f"/{name}"


async def wait_serving(address: str, timeout: float = 30.0, security: ClientSecurity | None = None) -> None:
    """Wait until the server at ``address`` answers SERVING (fails naming it otherwise)."""
    await wait_healthy(address, "service", timeout, security)


@asynccontextmanager
async def serving_process(name: str, env: Mapping[str, str] | None = None) -> AsyncIterator[ServiceProcess]:
    """The ``name`` service as a subprocess (``env`` added to its settings), serving while the block runs,
    then stopped with SIGTERM."""
    proc = ServiceProcess(name, env=env).start()
    try:
        await wait_serving(proc.address)
        yield proc
    finally:
        proc.terminate()


async def health_status(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        status: int = reply.status
        return status


async def reflected_services(address: str) -> list[str]:
    """Service names the server lists through the reflection API."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names: list[str] = []
        async for reply in call:
            names += [s.name for s in reply.list_services_response.service]
        return names
