"""Store settings (environment variables STORYWIRE_STORE_*, STORYWIRE_DATABASE_URL)."""

from pydantic import Field

from runtime.settings import CommonSettings


class StoreSettings(CommonSettings):
    store_port: int = Field(default=50053, ge=0, le=65535, description="gRPC port of the store.")
    database_url: str = Field(
        default="postgresql://storywire@127.0.0.1:5432/storywire",
        description="PostgreSQL DSN of the store.",
    )
