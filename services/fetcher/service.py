"""Wires the fetcher's servicer into the shared runtime."""

from __future__ import annotations

import grpc
from storywire.v1 import fetcher_pb2, fetcher_pb2_grpc

from runtime.server import Health
from services.fetcher.settings import FetcherSettings


class FetcherService:
    name = "fetcher"
    grpc_service_names = (fetcher_pb2.DESCRIPTOR.services_by_name["FetcherService"].full_name,)

    def __init__(self, settings: FetcherSettings) -> None:
        self.settings = settings

    def register(self, server: grpc.aio.Server) -> None:
        fetcher_pb2_grpc.add_FetcherServiceServicer_to_server(
            fetcher_pb2_grpc.FetcherServiceServicer(),  # type: ignore[abstract]
            server,
        )

    async def start(self, health: Health) -> None:
        await health.set_serving(True)

    async def stop(self) -> None:
        return None
