"""OpenTelemetry setup: one tracer and meter provider per process, OTLP export, gRPC instrumentation."""

from __future__ import annotations

import asyncio
import threading

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer
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
    """Install the process-wide providers and instrument grpc.aio servers and clients.

    Call before creating any gRPC server or channel. Idempotent: a second call returns the first
    provider (OpenTelemetry allows one global provider per process). Spans go to ``span_exporter`` when
    given (tests), else over OTLP/gRPC to ``otlp_endpoint`` when set, else nowhere (but trace context
    still propagates across services).
    """
    with _lock:
        existing = _state.get("provider")
        if isinstance(existing, TracerProvider):
            return existing
        resource = Resource.create({SERVICE_NAME: f"storywire-{service_name}"})
        provider = TracerProvider(resource=resource)
        readers: list[MetricReader] = []
        if span_exporter is None and otlp_endpoint:
            span_exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)
            readers.append(
                PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp_endpoint, insecure=True))
            )
        if span_exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(span_exporter))
        if metric_reader is not None:
            readers.append(metric_reader)
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
        GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
        GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
        _state["provider"] = provider
        return provider


async def flush_telemetry(timeout_millis: int = 5000) -> None:
    """Export buffered spans without blocking the event loop (the OTLP exporter is synchronous)."""
    provider = _state.get("provider")
    if isinstance(provider, TracerProvider):
        await asyncio.to_thread(provider.force_flush, timeout_millis)


def current_trace_id() -> str:
    """The current span's trace id as 32 hex characters, or empty outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""
