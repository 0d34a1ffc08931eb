"""Two synthesis streams share one cluster through the real gRPC server: the one that started the LLM
call is cancelled mid-call, the other still gets its LLM story, and every permit comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

import grpc
import pytest
from storywire.v1 import synthesizer_pb2, synthesizer_pb2_grpc

from runtime.server import start_server
from runtime.stubs import SynthesizerStub as Stub
from services.synthesizer.service import SynthesizerService
from tests.synthesizer.conftest import Sim, settings_for
from tests.synthesizer.sessionkit import labels, sample_by_source, until
from tests.synthesizer.test_service import requests

pytestmark = pytest.mark.integration


async def test_cancelling_the_stream_that_started_a_shared_call_does_not_cancel_it(sim: Sim) -> None:
    sim.sim.reset(latency=5.0)  # the second stream has 5 s to join the first one's call (busy machine)
    event = labels()
    one_event = sorted(set(event.values()))[0]
    articles = [a for arts in sample_by_source().values() for a in arts if event[a.id] == one_event]
    settings = settings_for(sim.url, worker_enabled=False)  # default release settings
    service = SynthesizerService(settings)
    engine = service.engine
    handle = await start_server(service, settings, 0)
    try:
        async with grpc.aio.insecure_channel(handle.address) as channel:
            stub: Stub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
            first = stub.Synthesize(requests(synthesizer_pb2.SynthesisConfig(job_id="first"), articles))
            await until(lambda: sim.sim.stats.in_service == 1, what="the first stream's call at the LLM")
            second = stub.Synthesize(requests(synthesizer_pb2.SynthesisConfig(job_id="second"), articles))
            collect = asyncio.create_task(_collect(second))
            await until(lambda: engine.writer.coalescer.coalesced == 1, what="the second stream joined")
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first.read()
            responses = await asyncio.wait_for(collect, 30)
            stats = await stub.GetCacheStats(synthesizer_pb2.GetCacheStatsRequest())
    finally:
        await handle.stop()
    stories = [r.story for r in responses if r.WhichOneof("item") == "story"]
    assert len(stories) == 1
    (story,) = stories
    assert not story.fallback, story.fallback_reason
    assert story.model == "sim-1"
    assert sorted(story.article_ids) == sorted(a.id for a in articles)
    assert responses[-1].summary.final_cluster_keys == [story.cluster_key]
    assert sim.sim.stats.completed == 1, "one LLM call, shared"
    assert stats.in_flight == 0
    assert engine.limiter.in_flight == 0


async def _collect(
    call: AsyncIterable[synthesizer_pb2.SynthesizeResponse],
) -> list[synthesizer_pb2.SynthesizeResponse]:
    return [r async for r in call]
