"""Store settings (environment variables STORYWIRE_STORE_*, STORYWIRE_DATABASE_URL, STORYWIRE_DB_*)."""

from pydantic import Field, SecretStr

from runtime.settings import AttemptSettings


class StoreSettings(AttemptSettings):
    store_port: int = Field(default=50053, ge=0, le=65535, description="gRPC port of the store.")
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://storywire@127.0.0.1:5432/storywire"),
        description="PostgreSQL DSN of the store; it carries the password, so it is a secret: never "
        "logged, shown with its password masked (also read from `/run/secrets/storywire_database_url`).",
    )
    db_pool_min: int = Field(default=2, ge=1, le=100, description="Connections the pool keeps open.")
    db_pool_max: int = Field(default=10, ge=1, le=500, description="Most connections the pool opens.")
    db_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, le=120, description="Timeout of one connection attempt."
    )
    db_statement_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="PostgreSQL statement_timeout of every store query."
    )
    db_retry_max_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Longest backoff between reconnection attempts while PostgreSQL is unreachable.",
    )
    store_batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="Items per write batch (one transaction each)."
    )
    store_batch_max_delay_ms: int = Field(
        default=100,
        ge=1,
        le=60_000,
        description="A partial batch is written after this long without filling up.",
    )
    store_write_concurrency: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Article batches of one stream written at once (overlaps receiving with writing).",
    )
    store_migrate_on_start: bool = Field(
        default=True, description="Apply pending migrations at start (off when a separate Job does it)."
    )
