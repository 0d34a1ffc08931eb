"""Wires the synthesizer into the shared runtime."""

from __future__ import annotations

import grpc
from storywire.v1 import synthesizer_pb2, synthesizer_pb2_grpc

from runtime.errors import ErrorMap
from runtime.logging import get_logger
from runtime.server import Health
from services.synthesizer.engine import Engine
from services.synthesizer.pipeline.coordinator import Coordinator
from services.synthesizer.servicer import SynthesizerServicer
from services.synthesizer.settings import SynthesizerSettings

log = get_logger(__name__)


class SynthesizerService:
    name = "synthesizer"
    grpc_service_names = (synthesizer_pb2.DESCRIPTOR.services_by_name["SynthesizerService"].full_name,)

    def __init__(self, settings: SynthesizerSettings) -> None:
        self.settings = settings
        self.engine = Engine(settings)
        self.coordinator = Coordinator(settings, self.engine) if settings.worker_enabled else None

    error_map = ErrorMap()  # no domain errors of its own reach a client

    def register(self, server: grpc.aio.Server) -> None:
        synthesizer_pb2_grpc.add_SynthesizerServiceServicer_to_server(
            SynthesizerServicer(self.engine), server
        )

    async def start(self, health: Health) -> None:
        backend = self.settings.llm_base_url or "none (extractive summaries only)"
        log.info("LLM backend", base_url=backend, model=self.settings.llm_model)
        await health.set_serving(True)
        if self.coordinator is not None:
            self.coordinator.start()

    async def stop(self) -> None:
        if self.coordinator is not None:
            await self.coordinator.stop()
        await self.engine.aclose()
