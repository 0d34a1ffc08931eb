"""Client helpers: channels with the runtime's options, TLS and token, and clear errors naming the
unreachable service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.security import ClientSecurity, bearer_interceptors

KEEPALIVE_MS = 30_000

__all__ = ["ClientSecurity", "ServiceUnavailableError", "check_health", "open_channel"]


class ServiceUnavailableError(ConnectionError):
    """A storywire service could not be reached."""

    def __init__(self, service: str, address: str, detail: str) -> None:
        super().__init__(f"the {service} service at {address} is unreachable: {detail}")
        self.service = service
        self.address = address


def message_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


def client_options(max_message_bytes: int) -> list[tuple[str, int | str]]:
    """Client side: keepalive pings detect a dead peer (a killed pod) on long streams within seconds;
    round_robin spreads calls over every address a name resolves to (a headless Service's pods); a peer
    that went away is tried again at least every 2 s (gRPC's default backoff grows to 120 s), so a call
    waiting for it (wait_for_ready) goes through within about 2 s of its return."""
    return [
        ("grpc.lb_policy_name", "round_robin"),
        *message_options(max_message_bytes),
        ("grpc.keepalive_time_ms", KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]


def open_channel(
    address: str,
    max_message_bytes: int = 16 * 1024 * 1024,
    security: ClientSecurity | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """A grpc.aio channel with the shared message limits and keepalive: TLS when a CA bundle is
    configured, and the bearer token on every call when there is one. ``security`` defaults to the
    client's environment (STORYWIRE_TLS_CA_FILE, STORYWIRE_TLS_SERVER_NAME, STORYWIRE_CLIENT_TOKEN)."""
    security = security if security is not None else ClientSecurity.from_env()
    options: list[tuple[str, Any]] = list(client_options(max_message_bytes))
    if security.server_name:
        options.append(("grpc.ssl_target_name_override", security.server_name))
    chain: list[grpc.aio.ClientInterceptor] = list(interceptors)
    if security.token.get_secret_value():
        chain += bearer_interceptors(security.token)
    credentials = security.credentials()
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=options, interceptors=chain or None)
    return grpc.aio.insecure_channel(address, options=options, interceptors=chain or None)


async def check_health(
    channel: grpc.aio.Channel, service: str, address: str, rpc_timeout: float = 5.0
) -> bool:
    """True when the server reports SERVING; raises ServiceUnavailableError when it cannot be reached."""
    stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lacks the methods
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=rpc_timeout)
    except grpc.aio.AioRpcError as exc:
        raise ServiceUnavailableError(service, address, exc.details() or exc.code().name) from exc
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
