"""Migrations apply from an empty database, once, and are recorded."""

from __future__ import annotations

import asyncpg
import pytest

from devtools.stack import StackInfo
from services.store.migrate import load_migrations, migrate
from tests.factories import unique

pytestmark = pytest.mark.integration


async def test_migrate_from_empty_then_rerun(stack: StackInfo) -> None:
    name = f"migr_{unique()}"
    admin = await asyncpg.connect(stack.postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(stack.postgres_dsn.rsplit("/", 1)[0] + f"/{name}")
        try:
            versions = [m.version for m in load_migrations()]
            assert await migrate(conn) == versions
            assert await migrate(conn) == []
            recorded = [
                r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
            ]
            assert recorded == versions
            tables = {
                r["tablename"]
                for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
            }
            assert {"jobs", "articles", "stories", "story_articles", "job_events"} <= tables
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()
