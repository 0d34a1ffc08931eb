"""Fetcher settings (environment variables STORYWIRE_FETCHER_*)."""

from pydantic import Field

from runtime.settings import CommonSettings


class FetcherSettings(CommonSettings):
    fetcher_port: int = Field(default=50051, ge=0, le=65535, description="gRPC port of the fetcher.")
