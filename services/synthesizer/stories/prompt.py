"""The prompt template (versioned: the version is part of the cache key) and parsing of the answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PROMPT_VERSION = "v1"
MAX_ARTICLES = 8
MAX_CHARS_PER_ARTICLE = 700

SYSTEM = (
    "You are a careful news editor. Write one news story that combines the articles you are given. "
    "Use only facts stated in the articles: no names, numbers or dates that they do not contain. "
    "Answer in exactly this format and nothing else:\n"
    "TITLE: <one-line headline>\n"
    "SUMMARY: <three to five sentences>"
)
STRICT_SUFFIX = (
    " Your previous answer stated facts that are not in the articles. This time copy every name, number "
    "and date exactly from the articles, and leave out anything you cannot find there."
)

_ANSWER = re.compile(r"TITLE:\s*(?P<title>.+?)\s*\n+\s*SUMMARY:\s*(?P<summary>.+)", re.S | re.I)


@dataclass(frozen=True)
class SourceArticle:
    """What the prompt needs of an article."""

    id: str
    title: str
    text: str
    content_hash: str


def build_messages(articles: Sequence[SourceArticle], strict: bool = False) -> tuple[tuple[str, str], ...]:
    parts = []
    for n, a in enumerate(articles[:MAX_ARTICLES], 1):
        text = a.text[:MAX_CHARS_PER_ARTICLE]
        parts.append(f"Article {n}: {a.title}\n{text}")
    system = SYSTEM + (STRICT_SUFFIX if strict else "")
    return (("system", system), ("user", "\n\n".join(parts)))


def parse_answer(text: str) -> tuple[str, str] | None:
    """(title, summary) from a "TITLE: ... SUMMARY: ..." answer, or None when it does not follow it."""
    match = _ANSWER.search(text.strip())
    if not match:
        return None
    title = " ".join(match.group("title").split()).strip(" *#\"'")
    summary = " ".join(match.group("summary").split()).strip()
    if not title or not summary:
        return None
    return title, summary
