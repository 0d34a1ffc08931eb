"""Streaming RPCs through a real storywire server (``runtime.server.start_server``: its interceptors, the
edge, OpenTelemetry's grpc.aio server instrumentation) on loopback: every server span is recorded as a
child of the caller's span; no stream leaves OpenTelemetry unable to detach its context ("Failed to
detach context", opentelemetry-python-contrib#2357), which a stream abandoned by its client did before
``runtime.stream_close``; a reader/writer stream handler (health Watch) is served and traced."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import propagate
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, SpanKind, set_span_in_context
from storywire.v1 import common_pb2, store_pb2, store_pb2_grpc

from devtools.services import DEV_SERVICE_TOKEN, dev_security
from runtime.client import open_channel
from runtime.errors import ErrorMap
from runtime.server import Health, ServerHandle, start_server
from runtime.settings import CommonSettings, load_settings
from runtime.stubs import StoreAllStub
from runtime.telemetry import tracer_provider

WATCH = "/storywire.v1.StoreService/WatchJob"
PUT = "/storywire.v1.StoreWorkerService/PutArticles"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
#: an event this large fills the stream's flow-control window after a few: a server that outpaces
#: its client waits in its write, where a client that leaves finds it
PADDING = "x" * 65_536


@dataclass
class StreamRun:
    """One WatchJob stream as the server ran it: the task it started in, the one its generator was
    closed in (the same, with the fix), and when it was closed."""

    started_in: asyncio.Task[Any] | None
    closed_in: asyncio.Task[Any] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class Streams(store_pb2_grpc.StoreServiceServicer):
    """WatchJob sends ``after_seq`` events and ends, or with ``after_seq`` 0 sends events until the
    client goes, never awaiting between two (so a leaving client finds it writing)."""

    def __init__(self) -> None:
        self.runs: list[StreamRun] = []

    async def WatchJob(self, request: Any, context: Any) -> AsyncIterator[store_pb2.WatchJobResponse]:
        run = StreamRun(asyncio.current_task())
        self.runs.append(run)
        try:
            sent = 0
            while request.after_seq == 0 or sent < request.after_seq:
                sent += 1
                yield store_pb2.WatchJobResponse(sequence=sent, snapshot=common_pb2.Job(error=PADDING))
        finally:
            run.closed_in = asyncio.current_task()
            run.closed.set()


class Writes(store_pb2_grpc.StoreWorkerServiceServicer):
    async def PutArticles(self, request_iterator: Any, context: Any) -> store_pb2.PutArticlesResponse:
        count = 0
        async for request in request_iterator:
            count += len(request.articles)
        return store_pb2.PutArticlesResponse(result=common_pb2.WriteResult(inserted=count))


class StreamService:
    """A storywire service with one server-streaming and one client-streaming RPC."""

    name = "streams"
    grpc_service_names = ("storywire.v1.StoreService", "storywire.v1.StoreWorkerService")
    error_map = ErrorMap()

    def __init__(self) -> None:
        # the generated bases answer UNIMPLEMENTED to the RPCs not under test (abstract to mypy only)
        self.streams = Streams()  # type: ignore[abstract]

    def register(self, server: grpc.aio.Server) -> None:
        store_pb2_grpc.add_StoreServiceServicer_to_server(self.streams, server)
        store_pb2_grpc.add_StoreWorkerServiceServicer_to_server(Writes(), server)  # type: ignore[abstract]

    async def start(self, health: Health) -> None:
        await health.set_serving(True)

    async def stop(self) -> None:
        pass


@dataclass
class Traced:
    service: StreamService
    handle: ServerHandle
    provider: TracerProvider
    exporter: InMemorySpanExporter

    def spans(self, trace_id: int) -> list[ReadableSpan]:
        assert self.provider.force_flush(10_000)
        return [s for s in self.exporter.get_finished_spans() if s.context.trace_id == trace_id]


@asynccontextmanager
async def serving() -> AsyncIterator[Traced]:
    """A storywire server on loopback whose spans go to an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = tracer_provider("streams", exporter)  # the services' provider, not installed globally
    service = StreamService()
    settings = load_settings(CommonSettings, service_token=DEV_SERVICE_TOKEN)
    handle = await start_server(service, settings, 0, tracer_provider=provider)
    try:
        yield Traced(service, handle, provider, exporter)
    finally:
        await handle.stop()
        provider.shutdown()


@pytest.fixture(scope="module")
async def traced() -> AsyncIterator[Traced]:
    async with serving() as running:
        yield running


@pytest.fixture
async def store(traced: Traced) -> AsyncIterator[StoreAllStub]:
    async with open_channel(traced.handle.address, security=dev_security()) as channel:
        yield StoreAllStub(channel)


def caller_span(traced: Traced) -> tuple[Span, Sequence[tuple[str, str]]]:
    """A client span of the caller's own and the metadata that carries it (W3C traceparent)."""
    span = traced.provider.get_tracer("test").start_span("caller", kind=SpanKind.CLIENT)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=set_span_in_context(span))
    return span, tuple(carrier.items())


def detach_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "opentelemetry.context"]


def the_server_span(traced: Traced, caller: Span, method: str) -> ReadableSpan:
    spans = traced.spans(caller.get_span_context().trace_id)
    servers = [s for s in spans if s.kind == SpanKind.SERVER and s.name == method]
    assert len(servers) == 1, [(s.name, s.kind) for s in spans]
    server = servers[0]
    assert server.parent is not None
    assert server.parent.is_remote
    assert server.parent.span_id == caller.get_span_context().span_id
    return server


async def closed(run: StreamRun, seconds: float = 30.0) -> None:
    """Until the stream's generator is closed. Without the fix only the garbage collector closes it (in
    a task of its own): collect, so that such code fails on the assertions and not on a timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not run.closed.is_set():
        assert loop.time() < deadline, "the server never closed the abandoned stream"
        gc.collect()
        with suppress(TimeoutError):
            await asyncio.wait_for(run.closed.wait(), 0.1)


async def test_a_stream_read_to_its_end_is_traced_under_the_caller(
    traced: Traced, store: StoreAllStub, caplog: pytest.LogCaptureFixture
) -> None:
    caller, metadata = caller_span(traced)
    request = store_pb2.WatchJobRequest(job_id=str(uuid.uuid4()), after_seq=3)
    events = [e async for e in store.WatchJob(request, metadata=metadata, timeout=30)]
    caller.end()
    assert [e.sequence for e in events] == [1, 2, 3]
    run = traced.service.streams.runs[-1]
    assert run.closed.is_set()
    assert run.closed_in is run.started_in
    server = the_server_span(traced, caller, WATCH)
    assert server.status.is_ok
    assert detach_errors(caplog) == []


async def test_a_stream_its_client_leaves_is_closed_in_its_task_and_traced(
    traced: Traced, store: StoreAllStub, caplog: pytest.LogCaptureFixture
) -> None:
    caller, metadata = caller_span(traced)
    call = store.WatchJob(store_pb2.WatchJobRequest(job_id=str(uuid.uuid4())), metadata=metadata, timeout=30)
    async for event in call:
        assert event.sequence == 1
        break
    run = traced.service.streams.runs[-1]
    call.cancel()  # as the synthesizer's cancel watch does when its job ends
    caller.end()
    await closed(run)
    assert detach_errors(caplog) == []
    assert run.closed_in is run.started_in, "the stream was closed outside its RPC's task"
    the_server_span(traced, caller, WATCH)


async def test_a_reader_writer_stream_is_served_and_traced(
    traced: Traced, caplog: pytest.LogCaptureFixture
) -> None:
    """grpc's health Watch writes with context.write instead of yielding (opentelemetry-python-contrib
    #3066: OpenTelemetry's interceptor alone answers it UNKNOWN, "'async for' requires an object with
    __aiter__ method, got coroutine")."""
    caller, metadata = caller_span(traced)
    async with open_channel(traced.handle.address, security=dev_security()) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)  # its stubs type no Watch
        call = health.Watch(health_pb2.HealthCheckRequest(service=""), metadata=metadata, timeout=30)
        first = await call.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        call.cancel()
    caller.end()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not any(s.name == HEALTH_WATCH for s in traced.spans(caller.get_span_context().trace_id)):
        assert loop.time() < deadline, "the cancelled Watch never ended its span"
        await asyncio.sleep(0.05)  # no event marks the end of a span
    the_server_span(traced, caller, HEALTH_WATCH)
    assert detach_errors(caplog) == []


async def test_a_client_stream_is_traced_under_the_caller(
    traced: Traced, store: StoreAllStub, caplog: pytest.LogCaptureFixture
) -> None:
    caller, metadata = caller_span(traced)

    async def requests() -> AsyncIterator[store_pb2.PutArticlesRequest]:
        for n in range(3):
            yield store_pb2.PutArticlesRequest(articles=[common_pb2.Article(url=f"https://example.org/{n}")])

    reply = await store.PutArticles(requests(), metadata=metadata, timeout=30)
    caller.end()
    assert reply.result.inserted == 3
    server = the_server_span(traced, caller, PUT)
    assert server.status.is_ok
    assert detach_errors(caplog) == []


async def test_streams_of_a_service_left_untraced_still_close_in_their_task(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # OpenTelemetry's setting: that interceptor then hands the stream beneath it through unwrapped
    monkeypatch.setenv("OTEL_PYTHON_GRPC_EXCLUDED_SERVICES", "storywire.v1.StoreService")
    async with serving() as untraced, open_channel(untraced.handle.address, security=dev_security()) as ch:
        caller, metadata = caller_span(untraced)
        request = store_pb2.WatchJobRequest(job_id=str(uuid.uuid4()), after_seq=2)
        events = [e async for e in StoreAllStub(ch).WatchJob(request, metadata=metadata, timeout=30)]
        call = StoreAllStub(ch).WatchJob(
            store_pb2.WatchJobRequest(job_id=str(uuid.uuid4())), metadata=metadata, timeout=30
        )
        async for _ in call:
            break
        call.cancel()
        caller.end()
        assert [e.sequence for e in events] == [1, 2]
        for run in untraced.service.streams.runs:
            await closed(run)
            assert run.closed_in is run.started_in
        assert [s.name for s in untraced.spans(caller.get_span_context().trace_id)] == ["caller"]
    assert detach_errors(caplog) == []
