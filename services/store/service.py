"""Wires the store into the shared runtime: pool (connected in the background), listener, servicer."""

from __future__ import annotations

import grpc
from storywire.v1 import store_pb2, store_pb2_grpc

from runtime.server import Health
from services.store.database import Database
from services.store.events import EventHub
from services.store.jobs import Jobs
from services.store.reads import Reads
from services.store.servicer import StoreServicer
from services.store.settings import StoreSettings
from services.store.writes import Writer


class StoreService:
    name = "store"
    grpc_service_names = (store_pb2.DESCRIPTOR.services_by_name["StoreService"].full_name,)

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.hub = EventHub(self.db)
        self.jobs = Jobs(self.db)
        self.servicer = StoreServicer(settings, self.jobs, Writer(self.db), Reads(self.db), self.hub)

    def register(self, server: grpc.aio.Server) -> None:
        store_pb2_grpc.add_StoreServiceServicer_to_server(self.servicer, server)

    async def start(self, health: Health) -> None:
        """Serve at once; report SERVING only once PostgreSQL is connected and migrated."""

        async def on_connected() -> None:
            await health.set_serving(True)

        self.db.start(on_connected)
        self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()
        await self.db.close()
