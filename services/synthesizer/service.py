"""Wires the synthesizer into the shared runtime."""

from __future__ import annotations

import asyncio
import contextlib

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
        self._watchdog: asyncio.Task[None] | None = None

    error_map = ErrorMap()  # no domain errors of its own reach a client

    def register(self, server: grpc.aio.Server) -> None:
        synthesizer_pb2_grpc.add_SynthesizerServiceServicer_to_server(
            SynthesizerServicer(self.engine), server
        )

    async def start(self, health: Health) -> None:
        backend = self.settings.llm_base_url or "none (extractive summaries only)"
        log.info("LLM backend", base_url=backend, model=self.settings.llm_model)
        await health.set_serving(True)
        self._watchdog = asyncio.create_task(self._watch_llm(health), name="llm-stall-watchdog")
        if self.coordinator is not None:
            self.coordinator.start()

    async def drain(self) -> None:
        """On SIGTERM, before in-flight RPCs drain: hand running jobs back so another replica takes them."""
        if self.coordinator is not None:
            await self.coordinator.drain()

    async def _watch_llm(self, health: Health) -> None:
        """Health tells the truth: NOT_SERVING while work waits for an LLM that makes no progress (every
        permit held by a stuck call, or a backend that stopped answering), SERVING again once calls move."""
        limit = self.settings.llm_stall_seconds
        stalled = False
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            waited = self.engine.stalled_for()
            if waited >= limit and not stalled:
                stalled = True
                log.error(
                    "LLM stalled: work is waiting but no LLM call has made progress; health NOT_SERVING",
                    stalled_seconds=round(waited, 1),
                    limit_seconds=limit,
                    in_flight=self.engine.limiter.in_flight,
                    concurrency_limit=self.engine.limiter.limit,
                )
                await health.set_serving(False)
            elif waited < limit and stalled:
                stalled = False
                log.info("LLM calls progress again; health SERVING")
                await health.set_serving(True)

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.coordinator is not None:
            await self.coordinator.stop()
        await self.engine.aclose()
