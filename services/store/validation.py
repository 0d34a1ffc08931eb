"""What the store checks beyond the edge's rules (:mod:`runtime.rules`, applied to every request before
a handler runs): the semantic rules of a job spec, ids, and each item of a batch write.

Each problem names the field; :class:`InvalidArgumentError` becomes INVALID_ARGUMENT at the edge.
"""

from __future__ import annotations

import uuid

from storywire.v1 import common_pb2

from runtime.errors import InvalidArgumentError
from runtime.ids import article_id, story_id
from runtime.rules import API_RULES
from runtime.validation import Validator, normalize_url

__all__ = [
    "InvalidArgumentError",
    "article_id",
    "article_problem",
    "parse_uuid",
    "story_id",
    "story_problem",
    "validate_spec",
]

MAX_URLS = 10_000
_items = Validator(API_RULES)


def parse_uuid(value: str, field: str) -> uuid.UUID:
    if not value:
        raise InvalidArgumentError(field, "is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgumentError(field, f"{value[:64]!r} is not a UUID") from None


def check_url(url: str, field: str) -> str:
    """The normalised URL (see :func:`runtime.validation.normalize_url`)."""
    return normalize_url(url, field)


def validate_spec(spec: common_pb2.JobSpec) -> None:
    """Raise InvalidArgumentError for the first bad field of a job spec; normalise its URLs in place
    (scheme and host lower-cased, default port and fragment dropped)."""
    _items.check(spec, "spec.")  # also done at the edge; here for callers that are not gRPC
    if not spec.urls:
        raise InvalidArgumentError("spec.urls", "at least one URL is required")
    if len(spec.urls) > MAX_URLS:
        raise InvalidArgumentError("spec.urls", f"{len(spec.urls)} URLs; at most {MAX_URLS} are allowed")
    normalised = [check_url(url, f"spec.urls[{i}]") for i, url in enumerate(spec.urls)]
    spec.urls[:] = normalised


def article_problem(article: common_pb2.Article) -> str | None:
    """Why an article cannot be stored, or None."""
    for name in ("canonical_url", "content_hash", "url"):
        if not getattr(article, name):
            return f"{name} is required"
    if article.id and article.id != article_id(article.canonical_url, article.content_hash):
        return "id does not match canonical_url and content_hash"
    return _items.check_item(article, "")


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
    return _items.check_item(story, "")
