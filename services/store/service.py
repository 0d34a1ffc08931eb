"""Wires the store into the shared runtime: pool (connected in the background), listener, and its two
gRPC services on one port: StoreService (clients) and StoreWorkerService (workers, service token)."""

from __future__ import annotations

import grpc
from storywire.v1 import store_pb2, store_pb2_grpc

from runtime.errors import ErrorMap
from runtime.server import Health
from services.store.database import Database
from services.store.events import EventHub
from services.store.jobs import Jobs
from services.store.reads import Reads
from services.store.servicer import ERRORS, StoreServicer
from services.store.settings import StoreSettings
from services.store.worker_servicer import StoreWorkerServicer
from services.store.writes import Writer


class StoreService:
    name = "store"
    grpc_service_names = tuple(
        store_pb2.DESCRIPTOR.services_by_name[name].full_name
        for name in ("StoreService", "StoreWorkerService")
    )
    error_map: ErrorMap = ERRORS

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.hub = EventHub(self.db)
        self.jobs = Jobs(self.db)
        self.servicer = StoreServicer(self.jobs, Reads(self.db), self.hub)
        self.worker_servicer = StoreWorkerServicer(settings, self.jobs, Writer(self.db), self.hub)

    def register(self, server: grpc.aio.Server) -> None:
        store_pb2_grpc.add_StoreServiceServicer_to_server(self.servicer, server)
        store_pb2_grpc.add_StoreWorkerServiceServicer_to_server(self.worker_servicer, server)

    async def start(self, health: Health) -> None:
        """Serve at once; report SERVING only once PostgreSQL is connected and migrated."""

        async def on_connected() -> None:
            await health.set_serving(True)

        self.db.start(on_connected)
        self.hub.start()

    async def drain(self) -> None:
        """Stopping (SIGTERM): end the streams that would hold the grace period (see EventHub)."""
        await self.hub.close_streams()

    async def stop(self) -> None:
        await self.hub.stop()
        await self.db.close()
