"""Read paths: a story with its articles, story listings with cursor pagination, articles by id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from storywire.v1 import common_pb2

from services.store.convert import (
    article_to_proto,
    decode_cursor,
    encode_cursor,
    from_ts,
    page_size,
    story_to_proto,
)
from services.store.database import Database
from services.store.jobupdate import NotFoundError
from services.store.validation import InvalidArgumentError, parse_uuid

MAX_BATCH_IDS = 1000


class Reads:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _links(self, story_ids: Sequence[str]) -> dict[str, list[str]]:
        rows = await self.db.pool.fetch(
            """SELECT story_id, article_id FROM story_articles
               WHERE story_id = ANY($1) ORDER BY story_id, position""",
            list(story_ids),
        )
        links: dict[str, list[str]] = {sid: [] for sid in story_ids}
        for r in rows:
            links[r["story_id"]].append(r["article_id"])
        return links

    async def get_story(self, story_id: str) -> tuple[common_pb2.Story, list[common_pb2.Article]]:
        if not story_id:
            raise InvalidArgumentError("story_id", "is required")
        row = await self.db.pool.fetchrow("SELECT * FROM stories WHERE id = $1", story_id)
        if row is None:
            raise NotFoundError(f"story {story_id} not found")
        ids = (await self._links([story_id]))[story_id]
        articles, _ = await self.articles(ids)
        return story_to_proto(row, ids), articles

    async def list_stories(
        self, job_id: str, after: Timestamp, before: Timestamp, size: int, token: str
    ) -> tuple[list[common_pb2.Story], str]:
        limit = page_size(size)
        clauses: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if job_id:
            clauses.append(f"job_id = {arg(parse_uuid(job_id, 'job_id'))}")
        created_after: dt.datetime | None = from_ts(after)
        created_before: dt.datetime | None = from_ts(before)
        if created_after:
            clauses.append(f"created_at >= {arg(created_after)}")
        if created_before:
            clauses.append(f"created_at < {arg(created_before)}")
        if token:
            created, key = decode_cursor(token)
            clauses.append(f"(created_at, id) < ({arg(created)}, {arg(key)})")
        where = " AND ".join(clauses) or "true"
        rows = await self.db.pool.fetch(
            f"SELECT * FROM stories WHERE {where} ORDER BY created_at DESC, id DESC LIMIT {arg(limit + 1)}",  # noqa: S608
            *args,
        )
        page = rows[:limit]
        links = await self._links([r["id"] for r in page])
        stories = [story_to_proto(r, links[r["id"]]) for r in page]
        next_token = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else ""
        return stories, next_token

    async def articles(self, ids: Sequence[str]) -> tuple[list[common_pb2.Article], list[str]]:
        if len(ids) > MAX_BATCH_IDS:
            raise InvalidArgumentError("article_ids", f"{len(ids)} ids; at most {MAX_BATCH_IDS} per call")
        rows = await self.db.pool.fetch("SELECT * FROM articles WHERE id = ANY($1)", list(ids))
        by_id = {r["id"]: r for r in rows}
        found = [article_to_proto(by_id[i]) for i in dict.fromkeys(ids) if i in by_id]
        missing = [i for i in dict.fromkeys(ids) if i not in by_id]
        return found, missing
