"""Versioned SQL migrations: ``migrations/NNNN_name.sql`` applied in order, each once, recorded in a table.

Replicas starting together are serialised by an advisory lock, so a migration never runs twice.
``python -m services.store.migrate`` applies them without starting the service (a Kubernetes Job does).
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from runtime.logging import configure_logging, get_logger
from runtime.settings import SettingsError, load_settings
from services.store.settings import StoreSettings

if TYPE_CHECKING:
    from services.store.database import Conn

log = get_logger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LOCK_ID = 0x5709_7769  # arbitrary, constant: "storywire migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} does not match NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}")
    return found


async def migrate(conn: Conn, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations, each in its own transaction; return the versions applied now."""
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied: list[int] = []
        for migration in load_migrations(directory):
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info("migration applied", version=migration.version, name=migration.name)
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)


async def _main() -> int:
    settings = load_settings(StoreSettings)
    configure_logging("store-migrate", settings.log_level, settings.log_format)
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(), timeout=settings.db_connect_timeout_seconds
    )
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    log.info("migrations up to date", applied=applied)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(_main()))
    except SettingsError as exc:
        print(f"storywire-store-migrate: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"storywire-store-migrate: cannot migrate: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
