"""Wires the store's servicer into the shared runtime."""

from __future__ import annotations

import grpc
from storywire.v1 import store_pb2, store_pb2_grpc

from runtime.server import Health
from services.store.settings import StoreSettings


class StoreService:
    name = "store"
    grpc_service_names = (store_pb2.DESCRIPTOR.services_by_name["StoreService"].full_name,)

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings

    def register(self, server: grpc.aio.Server) -> None:
        store_pb2_grpc.add_StoreServiceServicer_to_server(
            store_pb2_grpc.StoreServiceServicer(),  # type: ignore[abstract]
            server,
        )

    async def start(self, health: Health) -> None:
        await health.set_serving(True)

    async def stop(self) -> None:
        return None
