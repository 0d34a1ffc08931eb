"""Upgrading from a released database loses nothing.

For every fixture in ``upgrade/`` (a database written by a release's store, made with
``python -m tests.store.upgrade_fixture``): build that release's schema (its migrations only), load its
data, apply every migration added since (whatever they are: the test names none), then start the
current store on it and read every job, story and article back through the API. No table may lose a
row, and every field the release served must be served unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from storywire.v1 import store_pb2

from devtools.services import DEV_SERVICE_TOKEN, dev_channel
from devtools.stack import StackInfo
from runtime.server import start_server
from runtime.settings import load_settings
from runtime.stubs import StoreAllStub
from services.store.migrate import MIGRATIONS_DIR, load_migrations, migrate
from services.store.service import StoreService
from services.store.settings import StoreSettings
from tests.helpers import fresh_database, wait_serving
from tests.store.upgrade_fixture import job_fields, story_fields

pytestmark = pytest.mark.integration
RELEASES = sorted((Path(__file__).resolve().parent / "upgrade").glob("release-*.sql"))


def release_schema(version: int, into: Path) -> Path:
    """A migrations directory holding only the migrations of the release at ``version``."""
    for migration in MIGRATIONS_DIR.glob("*.sql"):
        if int(migration.name[:4]) <= version:
            shutil.copy(migration, into / migration.name)
    return into


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    tables = [
        r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    ]
    return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables if t != "schema_migrations"}


def load(dump: Path) -> tuple[str, dict[str, Any]]:
    expected: dict[str, Any] = json.loads(dump.with_suffix(".json").read_text())
    return dump.read_text(), expected


def test_there_is_a_release_fixture() -> None:
    assert RELEASES, "tests/store/upgrade/ holds no release-*.sql"


@pytest.mark.parametrize("dump", RELEASES, ids=lambda p: p.stem)
async def test_upgrade_from_a_release_loses_nothing(stack: StackInfo, dump: Path, tmp_path: Path) -> None:
    version = int(dump.stem.removeprefix("release-"))
    sql, expected = load(dump)
    dsn = await fresh_database(stack)
    conn = await asyncpg.connect(dsn)
    try:
        assert await migrate(conn, release_schema(version, tmp_path)) == list(range(1, version + 1))
        loader = await asyncpg.connect(dsn)  # the dump resets its session's search_path
        try:
            await loader.execute(sql)
        finally:
            await loader.close()
        before = await row_counts(conn)
        assert before["jobs"] == len(expected["jobs"])
        applied = await migrate(conn)
        assert applied == [m.version for m in load_migrations() if m.version > version]
        after = await row_counts(conn)
        assert {t: after.get(t, 0) for t in before} == before, "a migration lost or added rows"
    finally:
        await conn.close()

    settings = load_settings(
        StoreSettings, database_url=dsn, store_port=0, log_format="console", service_token=DEV_SERVICE_TOKEN
    )
    handle = await start_server(StoreService(settings), settings, 0)
    try:
        await wait_serving(handle.address)
        async with dev_channel(handle.address) as channel:
            store = StoreAllStub(channel)
            for job_id, fields in expected["jobs"].items():
                job = (await store.GetJob(store_pb2.GetJobRequest(job_id=job_id))).job
                assert job_fields(job) == fields
            stories = (await store.ListStories(store_pb2.ListStoriesRequest(page_size=1000))).stories
            assert {s.id: story_fields(s) for s in stories} == expected["stories"]
            for story_id, fields in expected["stories"].items():
                got = await store.GetStory(store_pb2.GetStoryRequest(story_id=story_id))
                assert [a.id for a in got.articles] == fields["article_ids"]
            found = await store.BatchGetArticles(
                store_pb2.BatchGetArticlesRequest(article_ids=expected["articles"])
            )
            assert (sorted(a.id for a in found.articles), list(found.missing_ids)) == (
                expected["articles"],
                [],
            )
            done = next(j for j, f in expected["jobs"].items() if f["name"] == "upgrade done")
            events = [e async for e in store.WatchJob(store_pb2.WatchJobRequest(job_id=done))]
            assert events[-1].snapshot.id == done
            assert events[-1].snapshot.state == expected["jobs"][done]["state"]
    finally:
        await handle.stop()
