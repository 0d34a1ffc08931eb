"""Fetcher settings (environment variables STORYWIRE_FETCHER_*, STORYWIRE_FETCH_*)."""

from pydantic import Field

from runtime.settings import RedisSettings


class FetcherSettings(RedisSettings):
    fetcher_port: int = Field(default=50051, ge=0, le=65535, description="gRPC port of the fetcher.")
    fetch_user_agent: str = Field(
        default="storywire-fetcher/0.1 (+https://github.com/storywire/storywire)",
        description="User-Agent header of every fetch.",
    )
    fetch_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="Connect timeout.")
    fetch_read_timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="Longest wait for the next bytes of a response."
    )
    fetch_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="Default total time for one URL, redirects and retries included.",
    )
    fetch_max_body_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest body read (decompressed), in bytes.",
    )
    fetch_max_redirects: int = Field(default=5, ge=0, le=20, description="Redirects followed per URL.")
    fetch_max_connections: int = Field(default=64, ge=1, le=4096, description="Concurrent requests in total.")
    fetch_per_host_concurrency: int = Field(
        default=8, ge=1, le=256, description="Default concurrent requests per host."
    )
    fetch_retries: int = Field(
        default=2, ge=0, le=10, description="Retries for connect errors, 429 and 502/503/504 (with backoff)."
    )
    fetch_allow_networks: str = Field(
        default="",
        description="Comma-separated CIDRs exempt from the SSRF guard, e.g. 127.0.0.1/32 for local feeds "
        "(empty = only public addresses).",
    )
