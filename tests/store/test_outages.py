"""PostgreSQL outages: NOT_SERVING until it is reachable, UNAVAILABLE while down, recovery without restart,
nothing acknowledged is lost. Each test has its own PostgreSQL, so the session's one is untouched."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2
from storywire.v1 import common_pb2, store_pb2

from devtools.services import dev_channel
from devtools.stack import Stack
from runtime.server import start_server
from runtime.stubs import StoreAllStub
from services.store.service import StoreService
from services.store.validation import article_id
from tests.conftest import make_state_dir
from tests.factories import make_article, make_story, unique
from tests.helpers import health_status, wait_serving
from tests.store.conftest import spec, store_settings
from tests.store.test_writes import read_all, stream_articles, stream_stories

pytestmark = pytest.mark.integration


@pytest.fixture
def private_stack() -> Iterator[Stack]:
    state = make_state_dir()
    stack = Stack(state)
    try:
        yield stack
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


async def test_unreachable_at_start_then_serving_without_restart(private_stack: Stack) -> None:
    settings = store_settings(
        private_stack.postgres.dsn, db_retry_max_seconds=0.5, db_connect_timeout_seconds=1
    )
    handle = await start_server(StoreService(settings), settings, 0)
    try:
        await asyncio.sleep(0.5)
        assert await health_status(handle.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        async with dev_channel(handle.address) as channel:
            stub = StoreAllStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.SubmitJob(store_pb2.SubmitJobRequest(spec=spec()))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "PostgreSQL is unavailable" in (info.value.details() or "")
            await asyncio.to_thread(private_stack.up)
            await wait_serving(handle.address, timeout=30)
            job = (await stub.SubmitJob(store_pb2.SubmitJobRequest(spec=spec()))).job
            assert job.state == common_pb2.JOB_STATE_QUEUED
    finally:
        await handle.stop()


async def test_postgres_restart_mid_test_loses_nothing_acknowledged(private_stack: Stack) -> None:
    await asyncio.to_thread(private_stack.up)
    settings = store_settings(
        private_stack.postgres.dsn, db_retry_max_seconds=0.5, db_connect_timeout_seconds=1
    )
    handle = await start_server(StoreService(settings), settings, 0)
    try:
        await wait_serving(handle.address)
        async with dev_channel(handle.address) as channel:
            stub = StoreAllStub(channel)
            prefix = unique()
            before = [make_article(prefix, i) for i in range(500)]
            ack = await stub.PutArticles(stream_articles(before))
            assert ack.result.inserted == 500
            job = (await stub.SubmitJob(store_pb2.SubmitJobRequest(spec=spec()))).job
            watcher = stub.WatchJob(store_pb2.WatchJobRequest(job_id=job.id))
            first_event = await watcher.read()
            assert isinstance(first_event, store_pb2.WatchJobResponse)
            assert first_event.snapshot.id == job.id

            await asyncio.to_thread(private_stack.postgres.stop)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.PutArticles(stream_articles([make_article(prefix, 1000)]))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE

            await asyncio.to_thread(private_stack.postgres.start)
            after = [make_article(prefix, i) for i in range(500, 800)]
            codes: list[grpc.StatusCode] = []
            for _ in range(50):  # the pool replaces its broken connections on the next use
                try:
                    ack2 = await stub.PutArticles(stream_articles(after))
                    break
                except grpc.aio.AioRpcError as exc:
                    codes.append(exc.code())
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("store did not recover after PostgreSQL came back")
            assert set(codes) <= {grpc.StatusCode.UNAVAILABLE}, codes
            assert ack2.result.inserted + ack2.result.duplicates == 300

            ids = [article_id(a.canonical_url, a.content_hash) for a in before + after]
            assert len(await read_all(stub, ids)) == 800
            # the watcher survived the outage and still receives events, in order
            await stub.PutStories(stream_stories([make_story(job.id, "after-restart")]))
            while True:
                event = await asyncio.wait_for(watcher.read(), 15)
                assert isinstance(event, store_pb2.WatchJobResponse)
                if event.WhichOneof("event") == "story":
                    assert event.story.cluster_key == "after-restart"
                    break
            watcher.cancel()
    finally:
        await handle.stop()
