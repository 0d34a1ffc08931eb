"""Stable ids shared by every service, so the same article or story always gets the same key."""

from __future__ import annotations

import hashlib


def article_id(canonical_url: str, content_hash: str) -> str:
    """The same canonical URL and content always give the same id."""
    return hashlib.sha256(f"{canonical_url}\n{content_hash}".encode()).hexdigest()[:32]


def story_id(job_id: str, cluster_key: str) -> str:
    """One story per cluster of a job, so a retried write upserts the same row."""
    return hashlib.sha256(f"{job_id}\n{cluster_key}".encode()).hexdigest()[:32]


def content_hash(title: str, text: str) -> str:
    """Hex SHA-256 of the normalised title and text."""
    return hashlib.sha256(f"{title.strip()}\n{text.strip()}".encode()).hexdigest()
