"""Make the upgrade fixture: a database written by a release's store, as data (``pg_dump --inserts``), with
what a later store must still serve from it.

``python -m tests.store.upgrade_fixture`` runs the store of the checked-out code on a private stack,
writes jobs in every final and non-final state, articles, stories and events through its gRPC API, and
saves ``upgrade/release-<version>.sql`` and ``.json``. Run it on a release's code only (the fixture in
the repository was made from main at migration 0002); tests/store/test_upgrade.py loads it into the
schema of that release and applies every migration added since.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from google.protobuf.duration_pb2 import Duration
from storywire.v1 import common_pb2, store_pb2

from devtools.services import DEV_SERVICE_TOKEN, dev_channel
from devtools.stack import Stack
from devtools.stack.postgres import find_pg_bindir
from runtime.server import start_server
from runtime.settings import load_settings
from runtime.stubs import StoreAllStub
from services.store.migrate import load_migrations
from services.store.service import StoreService
from services.store.settings import StoreSettings
from services.store.validation import article_id
from tests.conftest import make_state_dir
from tests.factories import make_article, make_story
from tests.helpers import wait_serving
from tests.store.test_writes import stream_articles, stream_stories

HERE = Path(__file__).resolve().parent / "upgrade"


def spec(name: str, *paths: str) -> common_pb2.JobSpec:
    urls = [f"https://upgrade.example/{p}" for p in paths or ("feed.xml",)]
    return common_pb2.JobSpec(urls=urls, name=name, options=common_pb2.JobOptions(max_articles=50))


async def write(store: StoreAllStub) -> None:
    submit = store.SubmitJob
    done = (await submit(store_pb2.SubmitJobRequest(spec=spec("upgrade done", "a.xml", "b.xml")))).job
    claim = await store.ClaimJob(store_pb2.ClaimJobRequest(worker_id="release", lease=Duration(seconds=60)))
    assert claim.job.id == done.id
    articles = [make_article("upgrade", i) for i in range(6)]

    assert (await store.PutArticles(stream_articles(articles))).result.inserted == 6
    ids = [article_id(a.canonical_url, a.content_hash) for a in articles]
    stories = [make_story(done.id, "k1", ids[:3]), make_story(done.id, "k2", ids[3:], fallback=True)]

    assert (await store.PutStories(stream_stories(stories))).result.inserted == 2
    for state in (common_pb2.JOB_STATE_SYNTHESIZING, common_pb2.JOB_STATE_STORING, common_pb2.JOB_STATE_DONE):
        await store.UpdateJob(
            store_pb2.UpdateJobRequest(
                job_id=done.id,
                lease_token=claim.lease_token,
                state=state,
                stages=[common_pb2.StageProgress(stage=common_pb2.STAGE_FETCH, done=2, total=2)],
                totals=common_pb2.SynthesisTotals(llm_calls=3, fallbacks=1),
                warnings=["b.xml: 1 entry skipped"] if state == common_pb2.JOB_STATE_SYNTHESIZING else [],
                final_cluster_keys=["k1", "k2"] if state == common_pb2.JOB_STATE_DONE else [],
            )
        )
    running = (await submit(store_pb2.SubmitJobRequest(spec=spec("upgrade running")))).job
    cancelled = (await submit(store_pb2.SubmitJobRequest(spec=spec("upgrade cancelled")))).job
    await store.CancelJob(store_pb2.CancelJobRequest(job_id=cancelled.id, reason="user asked"))
    failed = (await submit(store_pb2.SubmitJobRequest(spec=spec("upgrade failed")))).job
    claims = [await store.ClaimJob(store_pb2.ClaimJobRequest(worker_id="release")) for _ in range(2)]
    assert {c.job.id for c in claims} == {running.id, failed.id}  # oldest first
    claim = next(c for c in claims if c.job.id == failed.id)
    await store.UpdateJob(
        store_pb2.UpdateJobRequest(
            job_id=failed.id,
            lease_token=claim.lease_token,
            state=common_pb2.JOB_STATE_FAILED,
            error="all URLs failed",
        )
    )
    await submit(store_pb2.SubmitJobRequest(spec=spec("upgrade queued"), idempotency_key="release-key"))


def job_fields(j: common_pb2.Job) -> dict[str, object]:
    return {
        "name": j.spec.name,
        "state": j.state,
        "urls": list(j.spec.urls),
        "error": j.error,
        "attempts": j.attempts,
    }


def story_fields(s: common_pb2.Story) -> dict[str, object]:
    fields = ("job_id", "cluster_key", "title", "summary", "fallback", "model")
    return {**{f: getattr(s, f) for f in fields}, "article_ids": list(s.article_ids)}


async def expectations(store: StoreAllStub) -> dict[str, object]:
    """What a later store must serve from the database: every job, story and article, field by field."""
    jobs = (await store.ListJobs(store_pb2.ListJobsRequest(page_size=100))).jobs
    stories = (await store.ListStories(store_pb2.ListStoriesRequest(page_size=100))).stories
    return {
        "jobs": {j.id: job_fields(j) for j in jobs},
        "stories": {s.id: story_fields(s) for s in stories},
        "articles": sorted({a for s in stories for a in s.article_ids}),
    }


async def main() -> None:
    state = make_state_dir()
    stack = Stack(state)
    try:
        info = stack.up()
        settings = load_settings(
            StoreSettings, database_url=info.postgres_dsn, store_port=0, service_token=DEV_SERVICE_TOKEN
        )
        handle = await start_server(StoreService(settings), settings, 0)
        try:
            await wait_serving(handle.address)  # migrated on start
            async with dev_channel(handle.address) as channel:
                store = StoreAllStub(channel)
                await write(store)
                expected = await expectations(store)
        finally:
            await handle.stop()
        version = max(m.version for m in load_migrations())
        dsn = urlsplit(info.postgres_dsn)
        bindir = find_pg_bindir()
        assert bindir is not None
        argv = [
            str(bindir / "pg_dump"), "--data-only", "--inserts", "--no-owner",
            "--exclude-table=schema_migrations",
            "-h", dsn.hostname or "127.0.0.1", "-p", str(dsn.port), "-U", dsn.username or "postgres",
            dsn.path.lstrip("/"),
        ]  # fmt: skip
        dump = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, check=True)
        # SQL only: psql's meta-commands (\restrict) and comments out, so any driver can run it
        lines = [line for line in dump.stdout.splitlines() if line and not line.startswith(("\\", "--"))]
        HERE.mkdir(exist_ok=True)
        (HERE / f"release-{version:04d}.sql").write_text("\n".join(lines) + "\n")
        (HERE / f"release-{version:04d}.json").write_text(
            json.dumps(expected, indent=1, sort_keys=True) + "\n"
        )
        print(f"wrote {HERE}/release-{version:04d}.sql and .json")
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
