"""An in-process store server on the session's PostgreSQL, and its stub."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from storywire.v1 import common_pb2, store_pb2

from devtools.services import DEV_SERVICE_TOKEN, dev_channel
from devtools.stack import StackInfo
from runtime.server import ServerHandle, start_server
from runtime.settings import load_settings
from runtime.stubs import StoreAllStub as Store

__all__ = ["Store"]
from services.store.service import StoreService
from services.store.settings import StoreSettings
from tests.helpers import wait_serving

pytestmark = pytest.mark.integration


def store_settings(dsn: str, **overrides: object) -> StoreSettings:
    return load_settings(
        StoreSettings,
        database_url=dsn,
        store_port=0,
        log_format="console",
        service_token=DEV_SERVICE_TOKEN,  # as `make run` does: the worker API needs one
        **overrides,
    )


@pytest.fixture(scope="session")
async def store_server(stack: StackInfo) -> AsyncIterator[ServerHandle]:
    handle = await start_server(
        StoreService(store_settings(stack.postgres_dsn)), store_settings(stack.postgres_dsn), 0
    )
    try:
        await wait_serving(handle.address)
        yield handle
    finally:
        await handle.stop()


@pytest.fixture(scope="session")
async def store(store_server: ServerHandle) -> AsyncIterator[Store]:
    async with dev_channel(store_server.address) as channel:
        yield Store(channel)


def spec(*urls: str, **options: object) -> common_pb2.JobSpec:
    return common_pb2.JobSpec(
        urls=list(urls) or ["https://feeds.example/a.xml"],
        options=common_pb2.JobOptions(**options),  # type: ignore[arg-type]
        name="test",
    )


async def submit(store: Store, **options: object) -> common_pb2.Job:
    reply = await store.SubmitJob(store_pb2.SubmitJobRequest(spec=spec(**options)))
    return reply.job
