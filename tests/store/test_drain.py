"""A store told to stop (SIGTERM) ends at once the streams that would only end with their job (a watch,
a worker's story stream) with UNAVAILABLE, and returns long-polling claims empty, so its drain does not
last the whole grace period (10 s by default): the fault suite found a SIGTERM'd store stalling a job
for 10 s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from storywire.v1 import store_pb2

from devtools.services import dev_channel
from devtools.stack import StackInfo
from runtime.server import start_server
from runtime.stubs import StoreAllStub
from services.store.service import StoreService
from tests.factories import make_story
from tests.helpers import wait_serving
from tests.store.conftest import spec, store_settings

pytestmark = pytest.mark.integration


async def read_to_end(call: grpc.aio.UnaryStreamCall[Any, Any]) -> None:
    while await call.read() is not grpc.aio.EOF:
        pass


async def test_a_stopping_store_ends_its_endless_streams_at_once(stack: StackInfo) -> None:
    settings = store_settings(stack.postgres_dsn)
    assert settings.shutdown_grace_seconds == 10.0  # the default, not overridden
    handle = await start_server(StoreService(settings), settings, 0)
    await wait_serving(handle.address)
    async with dev_channel(handle.address) as channel:
        stub = StoreAllStub(channel)
        job = (await stub.SubmitJob(store_pb2.SubmitJobRequest(spec=spec()))).job
        watch = stub.WatchJob(store_pb2.WatchJobRequest(job_id=job.id))
        first = await watch.read()
        assert isinstance(first, store_pb2.WatchJobResponse)
        assert first.snapshot.id == job.id
        held = asyncio.Event()  # the worker's story stream stays open, as during a job

        async def stories() -> AsyncIterator[store_pb2.PutStoriesRequest]:
            yield store_pb2.PutStoriesRequest(stories=[make_story(job.id, "before-stop")])
            await held.wait()

        writes = asyncio.ensure_future(stub.PutStories(stories()))
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.5)  # the streams are open on the server (no event says so to a client)
        started = loop.time()
        await handle.stop()
        took = loop.time() - started
        held.set()
        with pytest.raises(grpc.aio.AioRpcError) as watched:
            await read_to_end(watch)
        with pytest.raises(grpc.aio.AioRpcError) as written:
            await writes
    assert watched.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "the store is stopping" in (watched.value.details() or "")
    assert written.value.code() == grpc.StatusCode.UNAVAILABLE
    assert took < settings.shutdown_grace_seconds / 2, f"the drain took {took:.1f} s"
