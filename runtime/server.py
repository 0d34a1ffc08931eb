"""One way to run a storywire gRPC service: grpc.aio server, health, reflection, graceful shutdown.

A service implements :class:`Service` (its domain code only); :func:`start_server` wires it into a
server and :func:`run` is what each service's ``__main__`` calls.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider

from runtime.client import KEEPALIVE_MS, message_options
from runtime.edge import Edge
from runtime.errors import ErrorMap
from runtime.logging import configure_logging, get_logger
from runtime.rules import API_RULES
from runtime.security import TokenPolicy, check_bind, server_credentials
from runtime.settings import CommonSettings, SettingsError, describe, load_settings
from runtime.stream_close import AdaptStreams, CloseStreamsInTask
from runtime.telemetry import flush_telemetry, server_interceptor, setup_telemetry
from runtime.validation import Validator

log = get_logger(__name__)


class Health:
    """Health status of every gRPC service of one server ("" is the server as a whole)."""

    def __init__(self, servicer: health.aio.HealthServicer, service_names: Sequence[str]) -> None:
        self._servicer = servicer
        self._names = ["", *service_names]
        self.serving = False

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self._servicer.set(name, status)
        if serving != self.serving:
            log.info("health changed", serving=serving)
        self.serving = serving


class Service(Protocol):
    """What a service plugs into the runtime."""

    @property
    def name(self) -> str:
        """Short name ("store"), used for logs, spans and the OpenTelemetry service name."""

    @property
    def grpc_service_names(self) -> Sequence[str]:
        """Full names of the gRPC services it registers ("storywire.v1.StoreService")."""

    @property
    def error_map(self) -> ErrorMap:
        """Its domain exceptions and their status codes (the runtime maps everything else)."""

    def register(self, server: grpc.aio.Server) -> None:
        """Add its servicers to the server (called before the server starts)."""

    async def start(self, health: Health) -> None:
        """Open resources after the port is bound; set health SERVING when ready (may be later)."""

    async def stop(self) -> None:
        """Release resources after in-flight RPCs have drained."""


@dataclass
class ServerHandle:
    """A started server."""

    server: grpc.aio.Server
    service: Service
    health: Health
    port: int
    grace_seconds: float
    _stopped: bool = field(default=False, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Drain: report NOT_SERVING, let RPCs finish within the grace period, then release resources."""
        if self._stopped:
            return
        self._stopped = True
        log.info("shutting down", grace_seconds=self.grace_seconds)
        await self.health.set_serving(False)
        drain = getattr(self.service, "drain", None)  # optional: work to hand over before RPCs drain
        if drain is not None:
            await drain()
        await self.server.stop(self.grace_seconds)
        await self.service.stop()
        await flush_telemetry()
        log.info("stopped")


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Server side: accept the clients' keepalive pings (the default minimum interval is 5 minutes,
    which would answer our 30 s pings with GOAWAY "too_many_pings") and ping idle clients itself.
    SO_REUSEPORT off: a second process asking for a port in use must fail, not take half its calls."""
    return [
        *message_options(max_message_bytes),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", KEEPALIVE_MS // 3),
        ("grpc.http2.max_ping_strikes", 0),
    ]


class BindError(OSError):
    """The server could not bind its address."""


def _why_not_bindable(host: str, port: int) -> str:
    """The operating system's reason a port cannot be bound (gRPC's own error does not say)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve it ({exc})"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return "the port is already in use by another process"
                return exc.strerror or str(exc)
    return "gRPC could not bind it"


async def start_server(
    service: Service, settings: CommonSettings, port: int, *, tracer_provider: TracerProvider | None = None
) -> ServerHandle:
    """Start ``service`` on ``settings.bind_host:port`` (port 0 picks a free one) and return its handle.

    Its interceptors, in order: response streams closed in the RPC's task (``runtime.stream_close``), a
    server span per RPC (to ``tracer_provider``, by default the process-wide one), the edge.

    Raises SettingsError for an unsafe configuration (see :func:`runtime.security.check_bind`) and
    BindError when the address cannot be bound."""
    check_bind(settings)
    credentials = server_credentials(settings)
    edge = Edge(TokenPolicy.from_settings(settings), service.error_map, Validator(API_RULES))
    interceptors = [CloseStreamsInTask(), server_interceptor(tracer_provider), AdaptStreams(), edge]
    server = grpc.aio.server(interceptors=interceptors, options=server_options(settings.max_message_bytes))
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    service.register(server)
    reflection.enable_server_reflection(
        [*service.grpc_service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    address = f"{settings.bind_host}:{port}"
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpc's "Failed to bind to address"
        bound = 0
    if bound == 0:
        raise BindError(f"cannot bind {address}: {_why_not_bindable(settings.bind_host, port)}")
    state = Health(servicer, service.grpc_service_names)
    await state.set_serving(False)
    await server.start()
    log.info(
        "listening",
        service=service.name,
        address=f"{settings.bind_host}:{bound}",
        tls=credentials is not None,
        client_token=bool(settings.client_token.get_secret_value()),
        service_token=bool(settings.service_token.get_secret_value()),
    )
    await service.start(state)
    return ServerHandle(server, service, state, bound, settings.shutdown_grace_seconds)


async def serve_until_signal(service: Service, settings: CommonSettings, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    handle = await start_server(service, settings, port)
    await stop.wait()
    await handle.stop()


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def usage(settings_cls: type[CommonSettings], service_name: str) -> str:
    """``python -m services.<name> --help``: what it runs and every setting it reads."""
    lines = [
        f"usage: python -m services.{service_name} [--help]",
        "",
        f"Runs the storywire {service_name} gRPC service until SIGTERM or SIGINT. It takes no arguments:",
        "every setting is an environment variable (exit code 2 names a bad value).",
        "",
        "settings (variable = default, then what it does):",
    ]
    for variable, default, meaning in describe(settings_cls):
        lines += [f"  {variable} = {default}", f"      {meaning}"]
    return "\n".join(lines)


def run(
    settings_cls: type[SettingsT],
    make_service: Callable[[SettingsT], Service],
    port_of: Callable[[SettingsT], int],
    service_name: str,
    argv: Sequence[str] | None = None,
) -> int:
    """Entry point of ``python -m services.<name>``: settings, logging, telemetry, serve.

    Returns the process exit code: 0 after a graceful stop or ``--help``, 2 for bad settings or
    arguments, 1 when it cannot start.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args:
        known = args in (["--help"], ["-h"])
        print(usage(settings_cls, service_name), file=sys.stdout if known else sys.stderr)
        if not known:
            print(f"storywire-{service_name}: unexpected arguments: {' '.join(args)}", file=sys.stderr)
        return 0 if known else 2
    try:
        settings = load_settings(settings_cls)
    except SettingsError as exc:
        print(f"storywire-{service_name}: {exc}", file=sys.stderr)
        return 2
    configure_logging(service_name, settings.log_level, settings.log_format)
    setup_telemetry(service_name, settings.otlp_endpoint)

    async def main() -> None:
        # built inside the running loop: grpc.aio channels and other loop-bound resources must be
        await serve_until_signal(make_service(settings), settings, port_of(settings))

    try:
        asyncio.run(main())
    except SettingsError as exc:  # found while building the service (e.g. a missing optional extra)
        print(f"storywire-{service_name}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a port in use, an address that does not exist here
        log.error("cannot start", error=str(exc))
        print(f"storywire-{service_name}: {exc}", file=sys.stderr)
        return 1
    return 0
