"""The CLI gives every unary call a deadline and names the service that timed out (exit code 3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from storywire.v1 import store_pb2

from cli import client
from cli.client import CliError, call, store_stub

SERVICE = store_pb2.DESCRIPTOR.services_by_name["StoreService"].full_name


@pytest.fixture
async def silent_store() -> AsyncIterator[str]:
    """A gRPC server that accepts ListJobs and never answers."""

    async def never(_request: bytes, _context: Any) -> bytes:
        await asyncio.Event().wait()
        return b""

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"ListJobs": grpc.unary_unary_rpc_method_handler(never)}
    )
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_a_store_that_never_answers_is_named_as_timed_out(
    silent_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "RPC_TIMEOUT", 0.5)  # the 30 s default, shortened for this test only
    channel, stub = store_stub(silent_store)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(CliError) as info:
            await call("store", silent_store, lambda: stub.ListJobs(store_pb2.ListJobsRequest()))
    finally:
        await channel.close()
    assert info.value.code == 3
    assert str(info.value).startswith(f"the store service at {silent_store} timed out")
    assert loop.time() - started < 10
