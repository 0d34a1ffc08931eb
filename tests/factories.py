"""Builders of valid API messages for tests."""

from __future__ import annotations

import hashlib
import uuid

from storywire.v1 import common_pb2


def make_article(prefix: str, i: int, text: str | None = None) -> common_pb2.Article:
    body = text if text is not None else f"Article {i} body about event {i % 13} with some words."
    canonical = f"https://news.example/{prefix}/{i}"
    article = common_pb2.Article(
        url=canonical + "?utm_source=feed",
        canonical_url=canonical,
        content_hash=hashlib.sha256(body.encode()).hexdigest(),
        title=f"Title {i}",
        text=body,
        source_url=f"https://news.example/{prefix}/feed.xml",
        author="Reporter",
    )
    article.published_at.FromSeconds(1_790_000_000 + i)
    article.fetched_at.FromSeconds(1_790_100_000)
    return article


def make_story(job_id: str, key: str, article_ids: list[str] | None = None, **kw: object) -> common_pb2.Story:
    story = common_pb2.Story(
        job_id=job_id,
        cluster_key=key,
        title=f"Story {key}",
        summary=f"Summary of {key}.",
        model="sim-1",
        prompt_version="v1",
        article_ids=article_ids or [],
        **kw,  # type: ignore[arg-type]
    )
    story.usage.prompt_tokens = 100
    story.usage.completion_tokens = 20
    return story


def unique() -> str:
    return uuid.uuid4().hex[:12]
