"""Batched, idempotent writes: COPY into a per-connection staging table, then one upsert per batch.

One transaction per batch: a batch is written entirely or not at all, and a transient failure (lost
connection) retries the same batch, which the upsert makes harmless. A batch written under a lease token
is fenced (``fence.py``): it is written only while that lease is its job's live lease.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from storywire.v1 import common_pb2, store_pb2

from runtime.logging import get_logger
from runtime.retry import TRANSIENT
from services.store.convert import from_ts, job_to_proto
from services.store.database import TRANSIENT_ERRORS, Conn, Database, required
from services.store.fence import lease_lost_reason, lock_jobs
from services.store.joblog import append_events, story_counts
from services.store.validation import article_id, article_problem, story_id, story_problem

log = get_logger(__name__)
T = TypeVar("T")
#: a batch is one transaction, so these are safe to retry as a whole
RETRYABLE: tuple[type[Exception], ...] = (
    *TRANSIENT_ERRORS,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)

ARTICLE_COLUMNS = [
    "id",
    "url",
    "canonical_url",
    "content_hash",
    "title",
    "body",
    "published_at",
    "source_url",
    "author",
    "fetched_at",
]
STORY_COLUMNS = [
    "idx", "id", "job_id", "cluster_key", "title", "summary", "model", "prompt_version", "prompt_tokens",
    "completion_tokens", "usage_estimated", "cache_hit", "cache_tier", "fallback", "fallback_reason",
    "latency_ms", "attempts", "article_ids",
]  # fmt: skip

ARTICLES_STAGE = """CREATE TEMP TABLE IF NOT EXISTS articles_stage
    (LIKE articles INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"""
STORIES_STAGE = """CREATE TEMP TABLE IF NOT EXISTS stories_stage (
    idx integer, id text, job_id uuid, cluster_key text, title text, summary text, model text,
    prompt_version text, prompt_tokens bigint, completion_tokens bigint, usage_estimated boolean,
    cache_hit boolean, cache_tier smallint, fallback boolean, fallback_reason text,
    latency_ms double precision, attempts integer, article_ids text[]) ON COMMIT DELETE ROWS"""

UPSERT_ARTICLES = """
WITH up AS (
    INSERT INTO articles AS a (id, url, canonical_url, content_hash, title, body, published_at,
                               source_url, author, fetched_at)
    SELECT id, url, canonical_url, content_hash, title, body, published_at, source_url, author, fetched_at
    FROM articles_stage
    ON CONFLICT (id) DO UPDATE
        SET title = EXCLUDED.title, body = EXCLUDED.body, published_at = EXCLUDED.published_at,
            author = EXCLUDED.author
        WHERE (a.title, a.body, a.published_at, a.author)
              IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.body, EXCLUDED.published_at, EXCLUDED.author)
    RETURNING (xmax = 0) AS inserted)
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM up
"""

UPSERT_STORIES = """
WITH src AS (SELECT DISTINCT ON (job_id, cluster_key) * FROM stories_stage
             ORDER BY job_id, cluster_key, idx DESC),
up AS (
    INSERT INTO stories AS s (id, job_id, cluster_key, title, summary, model, prompt_version, prompt_tokens,
                              completion_tokens, usage_estimated, cache_hit, cache_tier, fallback,
                              fallback_reason, latency_ms, attempts)
    SELECT id, job_id, cluster_key, title, summary, model, prompt_version, prompt_tokens, completion_tokens,
           usage_estimated, cache_hit, cache_tier, fallback, fallback_reason, latency_ms, attempts
    FROM src
    ON CONFLICT (job_id, cluster_key) DO UPDATE
        SET title = EXCLUDED.title, summary = EXCLUDED.summary, model = EXCLUDED.model,
            prompt_version = EXCLUDED.prompt_version, prompt_tokens = EXCLUDED.prompt_tokens,
            completion_tokens = EXCLUDED.completion_tokens, usage_estimated = EXCLUDED.usage_estimated,
            cache_hit = EXCLUDED.cache_hit, cache_tier = EXCLUDED.cache_tier, fallback = EXCLUDED.fallback,
            fallback_reason = EXCLUDED.fallback_reason, latency_ms = EXCLUDED.latency_ms,
            attempts = EXCLUDED.attempts, updated_at = now()
        WHERE (s.title, s.summary, s.model, s.fallback, s.fallback_reason)
              IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.summary, EXCLUDED.model, EXCLUDED.fallback,
                                EXCLUDED.fallback_reason)
    RETURNING s.id, s.job_id, s.cluster_key, s.title, s.fallback, s.cache_hit, (xmax = 0) AS inserted)
SELECT up.*, src.article_ids FROM up JOIN src USING (id)
"""


RECORD_JOB_ARTICLES = """INSERT INTO job_articles (job_id, attempt, article_id)
    SELECT $1, $2, unnest($3::text[])
    WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1)
    ON CONFLICT DO NOTHING"""


@dataclass(frozen=True)
class JobAttempt:
    """The job and attempt a PutArticles stream writes for."""

    job_id: uuid.UUID
    attempt: int


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: list[common_pb2.RejectedItem] = field(default_factory=list)
    #: a fenced write was refused: its lease is not its job's live lease any more
    lease_lost: bool = False

    def reject(self, items: Sequence[tuple[int, str]], reason: str) -> None:
        """Refuse every (index, key) of ``items`` for the same reason."""
        self.rejected += [common_pb2.RejectedItem(index=i, key=key, reason=reason) for i, key in items]

    def refuse_lease(self, items: Sequence[tuple[int, str]], lease: str) -> None:
        self.lease_lost = True
        self.reject(items, lease_lost_reason(lease))

    def result(self) -> common_pb2.WriteResult:
        return common_pb2.WriteResult(
            inserted=self.inserted, updated=self.updated, duplicates=self.duplicates, rejected=self.rejected
        )


async def with_retries(op: Callable[[], Awaitable[T]], attempts: int = 4, what: str = "batch") -> T:
    """Run ``op`` (one whole transaction), retrying transient database failures with the runtime's
    retry policy (each scheduled retry is logged by it, with ``what`` in the log line of a failure)."""
    try:
        async for attempt in TRANSIENT.with_attempts(attempts).retries(RETRYABLE):
            with attempt:
                return await op()
    except RETRYABLE as exc:
        log.warning(
            "write failed after retries", what=what, attempts=attempts, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    raise AssertionError("unreachable: the policy returns or raises")


def story_record(index: int, s: common_pb2.Story) -> tuple[Any, ...]:
    """One row of stories_stage, in STORY_COLUMNS order."""
    return (
        index, story_id(s.job_id, s.cluster_key), uuid.UUID(s.job_id), s.cluster_key, s.title, s.summary,
        s.model, s.prompt_version, s.usage.prompt_tokens, s.usage.completion_tokens, s.usage.estimated,
        s.cache_hit, int(s.cache_tier), s.fallback, s.fallback_reason, s.latency.ToMilliseconds() * 1.0,
        s.attempts, list(s.article_ids),
    )  # fmt: skip


class Writer:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def write_articles(
        self,
        items: Sequence[tuple[int, common_pb2.Article]],
        counts: Counts,
        job: JobAttempt | None = None,
        lease: str = "",
    ) -> None:
        """Upsert the valid articles; with ``job``, also record them as articles of that job's attempt.
        With a ``lease`` (which needs ``job``), nothing is written unless it is the job's live lease:
        every valid article is then refused with the reason."""
        by_id: dict[str, tuple[Any, ...]] = {}
        valid: list[tuple[int, str]] = []
        for index, a in items:
            problem = article_problem(a)
            if problem:
                counts.reject([(index, a.url)], problem)
                continue
            valid.append((index, a.url))
            aid = article_id(a.canonical_url, a.content_hash)
            if aid in by_id:  # the same article twice in one batch: a duplicate, kept once
                continue
            by_id[aid] = (
                aid, a.url, a.canonical_url, a.content_hash, a.title, a.text,
                from_ts(a.published_at), a.source_url, a.author, from_ts(a.fetched_at),
            )  # fmt: skip
        if not by_id:
            return
        # id order: concurrent batches lock rows in the same order, so they cannot deadlock
        records = [by_id[k] for k in sorted(by_id)]

        async def op() -> tuple[int, int] | None:
            async with self.db.transaction() as conn:
                if lease:  # the job row first: every writer and UpdateJob lock it before anything else
                    assert job is not None, "a fenced write names its job"
                    if not (await lock_jobs(conn, [job.job_id], lease)).get(job.job_id):
                        return None
                await conn.execute(ARTICLES_STAGE)
                await conn.copy_records_to_table("articles_stage", records=records, columns=ARTICLE_COLUMNS)
                row = required(await conn.fetchrow(UPSERT_ARTICLES))
                if job is not None:
                    await conn.execute(RECORD_JOB_ARTICLES, job.job_id, job.attempt, sorted(by_id))
                return int(row["inserted"]), int(row["updated"])

        written = await with_retries(op, what="articles")
        if written is None:
            counts.refuse_lease(valid, lease)
            return
        inserted, updated = written
        counts.inserted += inserted
        counts.updated += updated
        counts.duplicates += len(valid) - inserted - updated

    async def write_stories(
        self, items: Sequence[tuple[int, common_pb2.Story]], counts: Counts, lease: str = ""
    ) -> None:
        """Upsert the valid stories of existing jobs. With a ``lease``, a story is written only when that
        lease is its job's live lease, and refused with the reason otherwise."""
        candidates: list[tuple[int, common_pb2.Story]] = []
        for index, s in items:
            problem = story_problem(s)
            if problem:
                counts.reject([(index, s.cluster_key)], problem)
            else:
                candidates.append((index, s))
        if not candidates:
            return

        async def op() -> tuple[list[asyncpg.Record], dict[uuid.UUID, bool]]:
            async with self.db.transaction() as conn:
                job_ids = {uuid.UUID(s.job_id) for _, s in candidates}
                known = await lock_jobs(conn, job_ids, lease)  # the job rows first (fenced: locked)
                records = [story_record(i, s) for i, s in candidates if known.get(uuid.UUID(s.job_id))]
                if not records:
                    return [], known
                await conn.execute(STORIES_STAGE)
                await conn.copy_records_to_table("stories_stage", records=records, columns=STORY_COLUMNS)
                changed = await conn.fetch(UPSERT_STORIES)
                if changed:
                    ids = [r["id"] for r in changed]
                    await conn.execute("DELETE FROM story_articles WHERE story_id = ANY($1)", ids)
                    await conn.executemany(
                        "INSERT INTO story_articles (story_id, article_id, position) VALUES ($1, $2, $3)",
                        [
                            (r["id"], aid, pos)
                            for r in changed
                            for pos, aid in enumerate(dict.fromkeys(r["article_ids"]))
                        ],
                    )
                    await self._announce(conn, changed)
                return list(changed), known

        changed, known = await with_retries(op, what="stories")
        valid = 0
        fenced_out: list[tuple[int, str]] = []
        for index, s in candidates:
            writable = known.get(uuid.UUID(s.job_id))
            if writable is None:
                counts.reject([(index, s.cluster_key)], f"job {s.job_id} not found")
            elif not writable:
                fenced_out.append((index, s.cluster_key))
            else:
                valid += 1
        if fenced_out:
            counts.refuse_lease(fenced_out, lease)
        inserted = sum(1 for r in changed if r["inserted"])
        counts.inserted += inserted
        counts.updated += len(changed) - inserted
        counts.duplicates += valid - len(changed)

    async def _announce(self, conn: Conn, changed: Sequence[asyncpg.Record]) -> None:
        """Per job: a story event for each stored story, and the store stage's new counters."""
        by_job: dict[uuid.UUID, list[asyncpg.Record]] = {}
        for r in changed:
            by_job.setdefault(r["job_id"], []).append(r)
        for job_id, rows in sorted(by_job.items()):
            done, failed = await story_counts(conn, job_id)
            job_row = await conn.fetchrow(
                """UPDATE jobs SET stages = jsonb_set(stages, '{store}',
                       coalesce(stages->'store', jsonb_build_object('started_at', now()))
                       || jsonb_build_object('done', $2::bigint, 'failed', $3::bigint,
                              'total', greatest($2::bigint,
                                                coalesce((stages->'store'->>'total')::bigint, 0)))),
                       updated_at = now()
                   WHERE id = $1 RETURNING *""",
                job_id,
                done,
                failed,
            )
            job = job_to_proto(required(job_row))
            events = [
                store_pb2.WatchJobResponse(
                    story=store_pb2.StoryStored(
                        story_id=r["id"], title=r["title"], cluster_key=r["cluster_key"],
                        fallback=r["fallback"], cache_hit=r["cache_hit"],
                    )
                )
                for r in sorted(rows, key=lambda r: r["cluster_key"])
            ]  # fmt: skip
            store_stage = [p for p in job.stages if p.stage == common_pb2.STAGE_STORE]
            events += [store_pb2.WatchJobResponse(progress=p) for p in store_stage]
            await append_events(conn, job_id, events)
