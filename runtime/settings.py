"""Typed settings from environment variables (``STORYWIRE_*``), validated once at start.

Every service has its own settings class deriving from :class:`CommonSettings`; field names are unique
across services (``store_port``, ``fetcher_port``...), so one environment can configure a whole local
stack and each field maps to exactly one variable: ``STORYWIRE_`` + the upper-cased field name.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "STORYWIRE_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["json", "console"]


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable and says what is wrong."""


class CommonSettings(BaseSettings):
    """Settings every service has."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

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


S = TypeVar("S", bound=BaseSettings)


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{ENV_PREFIX}{field.upper()}"


def describe(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) of every setting of ``cls``, in declaration order."""
    rows = []
    for name, field in cls.model_fields.items():
        default = "(empty)" if field.default in ("", None) else str(field.default)
        rows.append((env_name(name), default, field.description or ""))
    return rows


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment (and explicit overrides); raise SettingsError on bad values."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            lines.append(f"{env_name(field)}={err.get('input')!r}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
