"""Transport security and bearer tokens, on both ends of every storywire channel.

Server side: :func:`server_credentials` (TLS when a certificate is configured), :func:`check_bind` (no
non-loopback address without TLS and tokens unless STORYWIRE_INSECURE=true) and :class:`TokenPolicy`
(which token each gRPC service needs; :mod:`runtime.edge` enforces it).

Client side: :class:`ClientSecurity` says how to dial (CA bundle, expected server name, token), and
:func:`bearer_interceptors` add ``authorization: Bearer <token>`` to every call of a channel.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from storywire.v1 import store_pb2

from runtime.errors import PermissionDeniedError, RequestError, UnauthenticatedError
from runtime.settings import ENV_PREFIX, SECRETS_DIR, CommonSettings, SettingsError, env_name, load_settings

__all__ = [
    "WORKER_SERVICES",
    "ClientSecurity",
    "TokenPolicy",
    "bearer_interceptors",
    "check_bind",
    "is_loopback",
    "server_credentials",
]

# gRPC services only the services themselves may call (the service token), never a plain client
WORKER_SERVICES = frozenset({store_pb2.DESCRIPTOR.services_by_name["StoreWorkerService"].full_name})
AUTHORIZATION = "authorization"
_NO_TOKEN = SecretStr("")


def _read(field: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SettingsError(f"{env_name(field)}={path!r}: cannot read it ({exc.strerror})") from None


def server_credentials(settings: CommonSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from the configured certificate and key, or None (plaintext)."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if not cert and not key:
        return None
    if not (cert and key):
        missing = "tls_key_file" if cert else "tls_cert_file"
        raise SettingsError(
            f"{env_name(missing)} is required with {env_name('tls_cert_file' if key else 'tls_key_file')}"
        )
    return grpc.ssl_server_credentials([(_read("tls_key_file", key), _read("tls_cert_file", cert))])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: CommonSettings) -> None:
    """Refuse a non-loopback address without TLS and both tokens, unless STORYWIRE_INSECURE=true."""
    if is_loopback(settings.bind_host) or settings.insecure:
        return
    missing = []
    if not settings.tls_cert_file:
        missing.append(f"TLS ({env_name('tls_cert_file')}, {env_name('tls_key_file')})")
    for name in ("client_token", "service_token"):
        if not getattr(settings, name).get_secret_value():
            missing.append(env_name(name))
    if missing:
        raise SettingsError(
            f"refusing to bind {settings.bind_host} (not a loopback address) without "
            + ", ".join(missing)
            + f"; configure them, or set {env_name('insecure')}=true when a service mesh provides "
            "TLS and authentication"
        )


def _eq(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


@dataclass(frozen=True)
class TokenPolicy:
    """Which bearer token a call needs.

    - the workers' API (:data:`WORKER_SERVICES`) needs the service token, always: with none configured
      it refuses every caller;
    - every other storywire service needs the client token (or the service token) when a client token
      is configured, and nothing otherwise;
    - health and reflection need nothing (probes and tools).
    """

    client_token: str = ""
    service_token: str = ""

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> TokenPolicy:
        return cls(settings.client_token.get_secret_value(), settings.service_token.get_secret_value())

    def check(  # noqa: PLR0911 - one return per outcome
        self, service: str, metadata: Sequence[tuple[str, Any]]
    ) -> RequestError | None:
        presented = bearer(metadata)
        if service in WORKER_SERVICES:
            if not self.service_token:
                return PermissionDeniedError(
                    f"{service} is the workers' API and this server has no service token configured "
                    f"({env_name('service_token')}): it refuses every caller"
                )
            if presented is None:
                return UnauthenticatedError(f"{service} is the workers' API: it needs the service token")
            if not _eq(presented, self.service_token):
                return PermissionDeniedError(f"{service} is the workers' API: it needs the service token")
            return None
        if not self.client_token:
            return None
        if presented is None:
            return UnauthenticatedError("this server needs a bearer token (authorization metadata)")
        if _eq(presented, self.client_token) or (self.service_token and _eq(presented, self.service_token)):
            return None
        return UnauthenticatedError("the bearer token is not valid for this server")


def bearer(metadata: Sequence[tuple[str, Any]]) -> str | None:
    """The token of an ``authorization: Bearer <token>`` entry, or None."""
    for key, value in metadata:
        if key == AUTHORIZATION:
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    return None


class _ClientEnv(BaseSettings):
    """The settings a client reads (the same variables as the services' CommonSettings)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", secrets_dir=SECRETS_DIR)
    tls_ca_file: str = ""
    tls_server_name: str = ""
    client_token: SecretStr = Field(default=SecretStr(""))


@dataclass(frozen=True)
class ClientSecurity:
    """How a client dials a storywire service: TLS with ``ca_file`` (empty = plaintext), the name the
    certificate must carry when it differs from the dialled host, and the bearer token to send."""

    ca_file: str = ""
    server_name: str = ""
    token: SecretStr = _NO_TOKEN

    @classmethod
    def from_env(cls) -> ClientSecurity:
        """For clients (CLI, health probe): STORYWIRE_TLS_CA_FILE, _TLS_SERVER_NAME, _CLIENT_TOKEN."""
        env = load_settings(_ClientEnv)
        return cls(env.tls_ca_file, env.tls_server_name, env.client_token)

    @classmethod
    def for_service(cls, settings: CommonSettings) -> ClientSecurity:
        """For a service calling another one: its CA settings and the service token."""
        return cls(settings.tls_ca_file, settings.tls_server_name, settings.service_token)

    def credentials(self) -> grpc.ChannelCredentials | None:
        if not self.ca_file:
            return None
        return grpc.ssl_channel_credentials(root_certificates=_read("tls_ca_file", self.ca_file))


class _Bearer:
    def __init__(self, token: SecretStr) -> None:
        self._entry = (AUTHORIZATION, f"Bearer {token.get_secret_value()}")

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._entry)
        return details._replace(metadata=metadata)  # type: ignore[attr-defined, no-any-return]


class _UnaryUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_Bearer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(details), request_iterator)


class _StreamStream(_Bearer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(details), request_iterator)


def bearer_interceptors(token: SecretStr) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that add ``authorization: Bearer <token>`` to every call of a channel, TLS or
    loopback plaintext (grpc.aio files an interceptor under one call shape only: one per shape)."""
    return [cls(token) for cls in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]
