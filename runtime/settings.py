"""Typed settings from environment variables (``STORYWIRE_*``), validated once at start.

Every service has its own settings class deriving from :class:`CommonSettings`; field names are unique
across services (``store_port``, ``fetcher_port``...), so one environment can configure a whole local
stack and each field maps to exactly one variable: ``STORYWIRE_`` + the upper-cased field name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "STORYWIRE_"
# mounted secrets (compose `secrets:`, a Kubernetes Secret volume): a file named after the variable in
# lower case (`storywire_service_token`) sets it when the environment does not
SECRETS_DIR: str | None = "/run/secrets" if Path("/run/secrets").is_dir() else None

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["json", "console"]


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable and says what is wrong."""


class CommonSettings(BaseSettings):
    """Settings every service has."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, secrets_dir=SECRETS_DIR
    )

    bind_host: str = Field(
        default="127.0.0.1",
        description="Address the gRPC server binds (0.0.0.0 in containers).",
    )
    log_level: LogLevel = Field(default="INFO", description="Minimum log level.")
    log_format: LogFormat = Field(
        default="json", description="`json` (one object per line) or `console` (human-readable)."
    )
    otlp_endpoint: str = Field(
        default="",
        description="OTLP/gRPC endpoint for traces and metrics, e.g. http://jaeger:4317 (empty = off).",
    )
    max_message_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        description="Largest gRPC message sent or received, in bytes.",
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="On SIGTERM, how long in-flight RPCs may finish before they are cancelled.",
    )
    tls_cert_file: str = Field(
        default="",
        description="PEM certificate chain the gRPC server presents (empty = no TLS; set with the key).",
    )
    tls_key_file: str = Field(default="", description="PEM private key of `STORYWIRE_TLS_CERT_FILE`.")
    tls_ca_file: str = Field(
        default="",
        description="PEM CA bundle that clients (workers, CLI, health probe) verify the services' "
        "certificates with (empty = plaintext channels).",
    )
    tls_server_name: str = Field(
        default="",
        description="Name clients expect in the services' certificates when it differs from the host "
        "they dial (e.g. the in-pod health probe dialling 127.0.0.1).",
    )
    client_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token every client RPC must carry (empty = client RPCs need no token). "
        "Also read from the file `storywire_client_token` in `/run/secrets`.",
    )
    service_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token of the services among themselves; the store's worker API refuses any "
        "caller without it (empty = it refuses everyone). Also read from `/run/secrets`.",
    )
    insecure: bool = Field(
        default=False,
        description="Allow binding a non-loopback address without TLS and tokens (only behind a "
        "service mesh that provides both).",
    )


class RedisSettings(CommonSettings):
    """The settings of a service that shares state through Redis (the fetcher and the synthesizer)."""

    redis_url: str = Field(
        default="",
        description="Redis for shared state: LLM results (synthesizer), conditional-GET memory (fetcher); "
        "e.g. redis://redis:6379/0 (empty = in-process only).",
    )


class AttemptSettings(CommonSettings):
    """The settings of a service that hands out or runs job attempts (the store and the synthesizer)."""

    worker_max_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Attempts of one job at most: a worker fails a job whose last attempt failed on "
        "infrastructure, and the store fails a job whose lease ran out after this many attempts (its "
        "worker died or could not record the failure) instead of handing it out again. A handover (a "
        "stopping worker giving the job back) is not an attempt.",
    )


S = TypeVar("S", bound=BaseSettings)


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{ENV_PREFIX}{field.upper()}"


def describe(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) of every setting of ``cls``, in declaration order."""
    rows = []
    for name, field in cls.model_fields.items():
        value = field.default
        if isinstance(value, SecretStr):  # never print a secret, only whether one is set
            value = shown_secret(value)
        default = "(empty)" if value in ("", None) else str(value)
        rows.append((env_name(name), default, field.description or ""))
    return rows


def shown_secret(value: SecretStr) -> str:
    """What may be shown of a secret: nothing ("(secret)"), except a URL's parts around its password
    (``postgresql://storywire:***@db:5432/storywire``), or "" when it is unset. A URL whose query or
    fragment could carry a password (``?password=...``, which libpq and asyncpg accept) is not shown."""
    text = value.get_secret_value()
    if not text:
        return ""
    try:
        url = urlsplit(text)
        if not (url.scheme and url.netloc) or url.query or url.fragment:
            return "(secret)"
        if url.password is None:
            return text
        host = url.netloc.rsplit("@", 1)[1]
        return urlunsplit(url._replace(netloc=f"{url.username or ''}:***@{host}"))
    except ValueError:
        return "(secret)"


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment (and explicit overrides); raise SettingsError on bad values."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            known = cls.model_fields.get(field)
            secret = known is not None and known.annotation is SecretStr
            shown = "(secret)" if secret or "token" in field or "key" in field else repr(err.get("input"))
            lines.append(f"{env_name(field)}={shown}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
