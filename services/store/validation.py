"""Validation of what clients send the store; each problem names the field, for INVALID_ARGUMENT."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from storywire.v1 import common_pb2

from runtime.ids import article_id, story_id

__all__ = ["InvalidArgumentError", "article_id", "story_id", "validate_spec"]

MAX_URLS = 10_000
MAX_URL_LENGTH = 2048
MAX_TEXT_BYTES = 1_000_000
MAX_NAME = 200


class InvalidArgumentError(ValueError):
    """A request field is invalid; ``str()`` is ``field: reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


def parse_uuid(value: str, field: str) -> uuid.UUID:
    if not value:
        raise InvalidArgumentError(field, "is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgumentError(field, f"{value[:64]!r} is not a UUID") from None


def check_url(url: str, field: str) -> None:
    if not url:
        raise InvalidArgumentError(field, "is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgumentError(field, f"is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidArgumentError(field, f"{url[:100]!r} does not parse ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidArgumentError(field, f"scheme {parts.scheme!r} is not http or https")
    if not parts.hostname:
        raise InvalidArgumentError(field, f"{url[:100]!r} has no host")


def _range(field: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise InvalidArgumentError(field, f"{value} is outside [{low}, {high}]")


def validate_spec(spec: common_pb2.JobSpec) -> None:
    """Raise InvalidArgumentError for the first bad field of a job spec."""
    if not spec.urls:
        raise InvalidArgumentError("spec.urls", "at least one URL is required")
    if len(spec.urls) > MAX_URLS:
        raise InvalidArgumentError("spec.urls", f"{len(spec.urls)} URLs; at most {MAX_URLS} are allowed")
    for i, url in enumerate(spec.urls):
        check_url(url, f"spec.urls[{i}]")
    if len(spec.name) > MAX_NAME:
        raise InvalidArgumentError("spec.name", f"is longer than {MAX_NAME} characters")
    o = spec.options
    _range("spec.options.time_window_hours", o.time_window_hours, 0, 24 * 366)
    _range("spec.options.min_articles_per_story", o.min_articles_per_story, 0, 1000)
    if o.similarity_threshold != 0:
        _range("spec.options.similarity_threshold", o.similarity_threshold, 0.01, 1.0)
    if len(o.model) > MAX_NAME:
        raise InvalidArgumentError("spec.options.model", f"is longer than {MAX_NAME} characters")
    _range("spec.options.max_concurrency", o.max_concurrency, 0, 1024)
    _range("spec.options.max_articles", o.max_articles, 0, 1_000_000)
    _range("spec.options.per_host_concurrency", o.per_host_concurrency, 0, 64)
    _range("spec.options.fetch_timeout_seconds", o.fetch_timeout_seconds, 0, 600)
    _range("spec.options.max_tokens", o.max_tokens, 0, 32_768)
    if o.full_text not in common_pb2.FullText.values():
        raise InvalidArgumentError("spec.options.full_text", f"{o.full_text} is not a FullText value")
    if o.HasField("temperature"):
        _range("spec.options.temperature", o.temperature, 0, 2)


def article_problem(article: common_pb2.Article) -> str | None:  # noqa: PLR0911 - one return per rule
    """Why an article cannot be stored, or None."""
    if not article.canonical_url:
        return "canonical_url is required"
    if not article.content_hash:
        return "content_hash is required"
    if not article.url:
        return "url is required"
    if article.id and article.id != article_id(article.canonical_url, article.content_hash):
        return "id does not match canonical_url and content_hash"
    text = article.text
    if len(text) > MAX_TEXT_BYTES // 4 and len(text.encode()) > MAX_TEXT_BYTES:
        return f"text is larger than {MAX_TEXT_BYTES} bytes"
    if any("\x00" in s for s in (article.title, article.text, article.url, article.author)):
        return "contains a NUL character"
    return None


def story_problem(story: common_pb2.Story) -> str | None:  # noqa: PLR0911 - one return per rule
    """Why a story cannot be stored, or None."""
    if not story.job_id:
        return "job_id is required"
    try:
        uuid.UUID(story.job_id)
    except ValueError:
        return "job_id is not a UUID"
    if not story.cluster_key:
        return "cluster_key is required"
    if not story.title.strip():
        return "title is empty"
    if not story.summary.strip():
        return "summary is empty"
    if story.id and story.id != story_id(story.job_id, story.cluster_key):
        return "id does not match job_id and cluster_key"
    if any("\x00" in s for s in (story.title, story.summary)):
        return "contains a NUL character"
    return None
