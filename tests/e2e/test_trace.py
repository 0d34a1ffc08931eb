"""One trace per job across client, store, fetcher and synthesizer, checked on real OTLP exports.

An in-process OTLP/gRPC receiver (the collector TraceService from opentelemetry-proto, standing in for
Jaeger, which accepts OTLP) collects the spans that every process exports."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from devtools.services import ROOT
from tests.e2e.conftest import Deployment
from tests.helpers import wait_serving

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps each span once: OTLP delivery is at-least-once (an exporter retries a batch whose answer
    was late), and a collector deduplicates by span id."""

    def __init__(self) -> None:
        self._spans: dict[tuple[str, str], Span] = {}

    @property
    def spans(self) -> list[Span]:
        return list(self._spans.values())

    async def Export(self, request: Any, context: Any) -> Any:
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    values = {a.key: a.value for a in s.attributes}
                    span = Span(attrs.get("service.name", "?"), s.name, s.trace_id.hex(), s.span_id.hex(),
                                s.parent_span_id.hex(), values)  # fmt: skip
                    self._spans[(span.trace_id, span.span_id)] = span
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    server = grpc.aio.server()
    collector = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield collector, f"http://127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_one_trace_per_job_across_services(
    deployment: Deployment, receiver: tuple[Receiver, str]
) -> None:
    collector, endpoint = receiver
    # restart every service exporting to the receiver
    # (stopping happens in a thread: the receiver runs on this event loop and must answer their exports)
    for name in ("synthesizer", "fetcher", "store"):
        await asyncio.to_thread(deployment.procs[name].terminate, 15)
    deployment.env["STORYWIRE_OTLP_ENDPOINT"] = endpoint
    try:
        for name in ("store", "fetcher", "synthesizer"):
            await wait_serving(deployment.start(name).address)
        env = {**os.environ, **deployment.env}
        argv = [sys.executable, "-m", "cli", "run", "--json", "--model", "sim-trace", *deployment.urls()]
        cli = await asyncio.to_thread(
            subprocess.run, argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
        job = json.loads(cli.stdout)["job"]
    finally:
        for name in ("synthesizer", "fetcher", "store"):  # SIGTERM flushes their span processors
            await asyncio.to_thread(deployment.procs[name].terminate, 15)
        deployment.env.pop("STORYWIRE_OTLP_ENDPOINT")
        for name in ("store", "fetcher", "synthesizer"):
            await wait_serving(deployment.start(name).address)

    root = next(s for s in collector.spans if s.name == "storywire.run")
    trace = [s for s in collector.spans if s.trace_id == root.trace_id]
    by_id = {s.span_id: s for s in trace}
    services = {s.service for s in trace}
    assert services == {"storywire-cli", "storywire-store", "storywire-fetcher", "storywire-synthesizer"}

    def parent(span: Span) -> Span | None:
        return by_id.get(span.parent_id)

    def edge(child_service: str, child_name: str) -> tuple[str, str]:
        span = next(s for s in trace if s.service == child_service and s.name == child_name)
        up = parent(span)
        assert up is not None, f"{child_name} has no parent in the trace"
        return up.service, up.name

    submit_server = "/storywire.v1.StoreService/SubmitJob"
    assert edge("storywire-store", submit_server) == ("storywire-cli", submit_server)
    assert edge("storywire-synthesizer", "job.run") == ("storywire-store", submit_server)
    assert edge("storywire-fetcher", "/storywire.v1.FetcherService/Fetch") == (
        "storywire-synthesizer",
        "/storywire.v1.FetcherService/Fetch",
    )
    assert edge("storywire-store", "/storywire.v1.StoreWorkerService/PutStories") == (
        "storywire-synthesizer",
        "/storywire.v1.StoreWorkerService/PutStories",
    )
    fetch_urls = [s for s in trace if s.name == "fetch.url"]
    assert len(fetch_urls) == len(deployment.urls())
    assert all(parent(s) and parent(s).name == "/storywire.v1.FetcherService/Fetch" for s in fetch_urls)  # type: ignore[union-attr]
    llm_calls = [s for s in trace if s.name == "llm.call"]
    # 14 final stories; early release (the default) may write provisional ones when the input pauses
    assert len(llm_calls) == job["totals"]["llmCalls"] >= 14
    assert all(s.attributes["storywire.llm.attempt"].int_value == 1 for s in llm_calls)
    print(f"\n{len(trace)} spans in trace {root.trace_id} across {sorted(services)}")


async def _serving(address: str) -> None:
    from tests.helpers import wait_serving

    await wait_serving(address)
