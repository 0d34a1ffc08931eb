"""OpenTelemetry setup: one tracer and meter provider per process, OTLP export, gRPC instrumentation."""

from __future__ import annotations

import asyncio
import os
import threading

import grpc
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, negate, service_name
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_lock = threading.Lock()
_state: dict[str, object] = {}


def setup_telemetry(
    service_name: str,
    otlp_endpoint: str = "",
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> TracerProvider:
    """Install the process-wide providers and instrument grpc.aio clients (servers get their tracing
    interceptor from :func:`server_interceptor`, which ``runtime.server.start_server`` adds).

    Call before creating any gRPC server or channel. Idempotent: a second call returns the first
    provider (OpenTelemetry allows one global provider per process). Spans go to ``span_exporter`` when
    given (tests), else over OTLP/gRPC to ``otlp_endpoint`` when set, else nowhere (but trace context
    still propagates across services).
    """
    with _lock:
        existing = _state.get("provider")
        if isinstance(existing, TracerProvider):
            return existing
        readers: list[MetricReader] = []
        if span_exporter is None and otlp_endpoint:
            span_exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)
            readers.append(
                PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp_endpoint, insecure=True))
            )
        if metric_reader is not None:
            readers.append(metric_reader)
        provider = tracer_provider(service_name, span_exporter)
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(resource=provider.resource, metric_readers=readers))
        GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
        _state["provider"] = provider
        return provider


def tracer_provider(service_name: str, span_exporter: SpanExporter | None = None) -> TracerProvider:
    """A tracer provider for ``storywire-<service_name>`` that batches its spans to ``span_exporter``."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"storywire-{service_name}"}))
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return provider


def server_interceptor(provider: TracerProvider | None = None) -> grpc.aio.ServerInterceptor:
    """OpenTelemetry's grpc.aio server interceptor: a server span per RPC, child of the caller's trace
    context. Spans go to ``provider``, by default the process-wide one (:func:`setup_telemetry`, also
    when it is installed after this call). Services named in OTEL_PYTHON_GRPC_EXCLUDED_SERVICES (comma
    separated) are not traced, as with OpenTelemetry's own ``GrpcAioInstrumentorServer``.

    The server must run ``runtime.stream_close.CloseStreamsInTask`` before it and ``AdaptStreams`` right
    after it: this interceptor keeps its span current across each ``yield`` of a response stream, which
    must then be closed in the RPC's own task, and runs only async-generator stream handlers (see that
    module)."""
    listed = os.environ.get("OTEL_PYTHON_GRPC_EXCLUDED_SERVICES", "").split(",")
    names = [name.strip() for name in listed if name.strip()]
    excluded = negate(any_of(*(service_name(name) for name in names))) if names else None
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=excluded
    )
    return interceptor


async def flush_telemetry(timeout_millis: int = 5000) -> None:
    """Export buffered spans without blocking the event loop (the OTLP exporter is synchronous)."""
    provider = _state.get("provider")
    if isinstance(provider, TracerProvider):
        await asyncio.to_thread(provider.force_flush, timeout_millis)


def current_trace_id() -> str:
    """The current span's trace id as 32 hex characters, or empty outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""
