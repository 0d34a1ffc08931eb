"""Wires the synthesizer's servicer into the shared runtime."""

from __future__ import annotations

import grpc
from storywire.v1 import synthesizer_pb2, synthesizer_pb2_grpc

from runtime.server import Health
from services.synthesizer.settings import SynthesizerSettings


class SynthesizerService:
    name = "synthesizer"
    grpc_service_names = (synthesizer_pb2.DESCRIPTOR.services_by_name["SynthesizerService"].full_name,)

    def __init__(self, settings: SynthesizerSettings) -> None:
        self.settings = settings

    def register(self, server: grpc.aio.Server) -> None:
        synthesizer_pb2_grpc.add_SynthesizerServiceServicer_to_server(
            synthesizer_pb2_grpc.SynthesizerServiceServicer(),  # type: ignore[abstract]
            server,
        )

    async def start(self, health: Health) -> None:
        await health.set_serving(True)

    async def stop(self) -> None:
        return None
