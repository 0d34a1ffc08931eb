"""A store told to stop (SIGTERM) ends at once the streams that would only end with their job (a watch,
a worker's story stream) with UNAVAILABLE, and returns long-polling claims empty, so its drain does not
last the whole grace period (10 s by default): the fault suite found a SIGTERM'd store stalling a job
for 10 s."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
from storywire.v1 import store_pb2

from devtools.services import dev_channel
from devtools.stack import StackInfo
from runtime.server import start_server
from runtime.stubs import StoreAllStub
from services.store.events import UntilClosing
from services.store.service import StoreService
from tests.factories import make_story
from tests.helpers import wait_serving
from tests.store.conftest import spec, store_settings
from tests.store.test_jobs import claim_job

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


async def until_blocked_on(conn: asyncpg.Connection, table: str, timeout: float = 30.0) -> None:
    """Until a query waits for a lock on ``table`` (PostgreSQL has no event for it: polled)."""
    async with asyncio.timeout(timeout):
        query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass"
        while not await conn.fetchval(query, table):  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.05)


async def test_a_stopping_store_finishes_the_writes_it_received(stack: StackInfo) -> None:
    """Rows a worker sent before the SIGTERM are stored: the drain ends the stream once what it received
    is written, instead of cancelling the write under way (its rows rolled back cost the resumed job
    their LLM calls again)."""
    settings = store_settings(stack.postgres_dsn)
    service = StoreService(settings)
    handle = await start_server(service, settings, 0)
    await wait_serving(handle.address)
    blocker = await asyncpg.connect(stack.postgres_dsn)
    try:
        async with dev_channel(handle.address) as channel:
            stub = StoreAllStub(channel)
            job = (await stub.SubmitJob(store_pb2.SubmitJobRequest(spec=spec()))).job
            await claim_job(stub, job.id, "worker")
            held = asyncio.Event()  # the worker's story stream stays open, as during a job

            async def stories() -> AsyncIterator[store_pb2.PutStoriesRequest]:
                yield store_pb2.PutStoriesRequest(stories=[make_story(job.id, "sent-before-stop")])
                await held.wait()

            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE stories IN EXCLUSIVE MODE")  # the write waits, under way
            writes = asyncio.ensure_future(stub.PutStories(stories()))
            await until_blocked_on(blocker, "stories")
            stopping = asyncio.ensure_future(handle.stop())
            await asyncio.wait_for(service.hub.closing.wait(), 30)
            await lock.commit()
            with pytest.raises(grpc.aio.AioRpcError) as written:
                await asyncio.wait_for(writes, 30)
            held.set()
            await stopping
        assert written.value.code() == grpc.StatusCode.UNAVAILABLE
        stored = await blocker.fetchval(
            "SELECT count(*) FROM stories WHERE job_id = $1 AND cluster_key = 'sent-before-stop'",
            uuid.UUID(job.id),
        )
        assert stored == 1
    finally:
        await blocker.close()


async def test_a_stream_ended_by_its_handler_leaves_no_read_pending() -> None:
    """A handler cancelled (its client went away) while the next message is awaited: the read is
    cancelled with it, not left pending on the request stream."""
    reading, ended = asyncio.Event(), asyncio.Event()

    async def requests() -> AsyncIterator[int]:
        try:
            reading.set()
            await asyncio.Event().wait()  # the client sends nothing more
            yield 1
        finally:
            ended.set()

    async def handler() -> None:
        async for _ in UntilClosing(requests(), asyncio.Event()):
            pass

    task = asyncio.create_task(handler())
    await asyncio.wait_for(reading.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(ended.wait(), 5)
