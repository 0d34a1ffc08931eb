"""The three services in-process on loopback (the store on a database of its own), and throwaway TLS
certificates made at run time with trustme."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from devtools.services import DEV_SERVICE_TOKEN
from devtools.stack import StackInfo
from runtime.server import ServerHandle, start_server
from runtime.settings import load_settings
from services.fetcher.service import FetcherService
from services.fetcher.settings import FetcherSettings
from services.store.service import StoreService
from services.store.settings import StoreSettings
from services.synthesizer.service import SynthesizerService
from services.synthesizer.settings import SynthesizerSettings
from tests.helpers import fresh_database, wait_serving
from tests.tls import Certs, make_certs

__all__ = ["Certs", "Servers", "fresh_database"]

pytestmark = pytest.mark.integration


@dataclass
class Servers:
    store: ServerHandle
    fetcher: ServerHandle
    synthesizer: ServerHandle

    def address(self, service: str) -> str:
        handle: ServerHandle = getattr(self, service)
        return handle.address


COMMON = {"log_format": "console", "shutdown_grace_seconds": 1, "service_token": DEV_SERVICE_TOKEN}


@pytest.fixture(scope="session")
async def servers(stack: StackInfo) -> AsyncIterator[Servers]:
    """The services with their default settings, plus the service token that `make run` also sets."""
    store_settings = load_settings(
        StoreSettings, database_url=await fresh_database(stack), store_port=0, **COMMON
    )
    fetcher_settings = load_settings(FetcherSettings, fetcher_port=0, **COMMON)
    synth_settings = load_settings(SynthesizerSettings, synthesizer_port=0, worker_enabled=False, **COMMON)
    handles = [
        await start_server(StoreService(store_settings), store_settings, 0),
        await start_server(FetcherService(fetcher_settings), fetcher_settings, 0),
        await start_server(SynthesizerService(synth_settings), synth_settings, 0),
    ]
    try:
        for handle in handles:
            await wait_serving(handle.address)
        yield Servers(*handles)
    finally:
        for handle in handles:
            await handle.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))
