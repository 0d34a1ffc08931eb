"""The prompts (versioned: the version is part of the cache key) and parsing of the answer.

Two prompt styles, one per model class:

- ``full`` for models with a large context: up to 8 articles of 700 characters, the v1 prompt.
- ``compact`` for small local models (SmolLM2-135M on llama-server): up to 4 articles, each cut to its
  title and the two sentences that carry most of the cluster's shared terms (term weights: in how many of
  the cluster's articles a word occurs), a short instruction; a few hundred prompt tokens.

Two answer formats: ``text`` ("TITLE: ... SUMMARY: ...") and ``json`` ({"title": ..., "summary": ...}),
the one a backend with structured output is held to (:mod:`services.synthesizer.stories.structured`).
:func:`parse_answer` reads both.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from services.synthesizer.text import sentences, tokens

Style = Literal["compact", "full"]
AnswerFormat = Literal["text", "json"]

#: the full prompt with the text answer: unchanged since v1 (its cache entries stay valid)
PROMPT_VERSION = "v1"
STYLE_VERSIONS: dict[Style, str] = {"full": "v1", "compact": "c2"}
MAX_ARTICLES = 8
MAX_CHARS_PER_ARTICLE = 700
COMPACT_ARTICLES = 4
COMPACT_SENTENCES = 2
COMPACT_SENTENCE_CHARS = 260

SYSTEM = (
    "You are a careful news editor. Write one news story that combines the articles you are given. "
    "Use only facts stated in the articles: no names, numbers or dates that they do not contain. "
    "Answer in exactly this format and nothing else:\n"
    "TITLE: <one-line headline>\n"
    "SUMMARY: <three to five sentences>"
)
SYSTEM_JSON = (
    "You are a careful news editor. Write one news story that combines the articles you are given. "
    "Use only facts stated in the articles: no names, numbers or dates that they do not contain. "
    'Answer with one JSON object: {"title": "<one-line headline>", "summary": "<three to five '
    'sentences>"}'
)
COMPACT_SYSTEM = (
    "Write a short news report in your own words from these notes. Use only names and numbers from the notes."
)
COMPACT_FORMAT: dict[AnswerFormat, str] = {
    "text": " Answer as:\nTITLE: <headline>\nSUMMARY: <two or three sentences>",
    "json": ' Answer as JSON: {"title": "<headline>", "summary": "<two or three sentences>"}',
}
STRICT_SUFFIX = (
    " Your previous answer stated facts that are not in the articles. This time copy every name, number "
    "and date exactly from the articles, and leave out anything you cannot find there."
)
COMPACT_STRICT_SUFFIX = " Each sentence: facts from one note only."

_ANSWER = re.compile(r"TITLE:\s*(?P<title>.+?)\s*\n+\s*SUMMARY:\s*(?P<summary>.+)", re.S | re.I)
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


@dataclass(frozen=True)
class SourceArticle:
    """What the prompt needs of an article."""

    id: str
    title: str
    text: str
    content_hash: str


@dataclass(frozen=True)
class PromptSpec:
    """Which prompt and answer format a request uses; ``version`` goes into the cache key."""

    style: Style = "full"
    answer: AnswerFormat = "text"

    @property
    def version(self) -> str:
        if (self.style, self.answer) == ("full", "text"):
            return PROMPT_VERSION
        return f"{STYLE_VERSIONS[self.style]}-{self.style}-{self.answer}"


def key_sentences(articles: Sequence[SourceArticle], per_article: int = COMPACT_SENTENCES) -> list[list[str]]:
    """For each article, the ``per_article`` sentences that weigh most, in their original order.

    A sentence's weight is the mean, over its distinct terms, of the share of the cluster's articles
    that use the term (what the articles agree on is the event), plus a small bonus for the lead
    (news puts the essentials first)."""
    docs = [set(tokens(f"{a.title} {a.text}")) for a in articles]
    df: Counter[str] = Counter()
    for terms in docs:
        df.update(terms)
    n = max(1, len(articles))
    picked: list[list[str]] = []
    for article in articles:
        # page extraction often repeats the headline as the first line of the text
        text = article.text.removeprefix(article.title).strip() if article.title else article.text
        candidates = [s for s in sentences(text) if len(s) >= 20]
        scored = []
        for pos, sentence in enumerate(candidates):
            terms = set(tokens(sentence))
            shared = sum(df[t] / n for t in terms) / math.sqrt(len(terms) or 1)
            scored.append((shared + 0.5 / (1 + pos), pos, sentence))
        best = sorted(scored, key=lambda s: (-s[0], s[1]))[:per_article]
        picked.append([_clip(s) for _, _, s in sorted(best, key=lambda s: s[1])])
    return picked


def _clip(sentence: str) -> str:
    if len(sentence) <= COMPACT_SENTENCE_CHARS:
        return sentence
    return sentence[:COMPACT_SENTENCE_CHARS].rsplit(" ", 1)[0] + " ..."


def build_messages(
    articles: Sequence[SourceArticle], strict: bool = False, spec: PromptSpec | None = None
) -> tuple[tuple[str, str], ...]:
    spec = spec or PromptSpec()
    if spec.style == "compact":
        chosen = articles[:COMPACT_ARTICLES]
        notes = key_sentences(chosen)
        user = "\n\n".join(
            f"Article {n}: {a.title}\n{' '.join(s)}"
            for n, (a, s) in enumerate(zip(chosen, notes, strict=True), 1)
        )
        system = COMPACT_SYSTEM + (COMPACT_STRICT_SUFFIX if strict else "") + COMPACT_FORMAT[spec.answer]
        return (("system", system), ("user", user))
    parts = []
    for n, a in enumerate(articles[:MAX_ARTICLES], 1):
        text = a.text[:MAX_CHARS_PER_ARTICLE]
        parts.append(f"Article {n}: {a.title}\n{text}")
    system = (SYSTEM_JSON if spec.answer == "json" else SYSTEM) + (STRICT_SUFFIX if strict else "")
    return (("system", system), ("user", "\n\n".join(parts)))


def _clean(title: str, summary: str) -> tuple[str, str] | None:
    title = " ".join(title.split()).strip(" *#\"'")
    summary = " ".join(summary.split()).strip()
    if not title or not summary:
        return None
    return title, summary


def _parse_json(text: str) -> tuple[str, str] | None:
    match = _JSON_OBJECT.search(text)
    if not match:
        return None
    try:
        body = json.loads(match.group(0))
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    title, summary = body.get("title"), body.get("summary")
    if not isinstance(title, str) or not isinstance(summary, str):
        return None
    return _clean(title, summary)


def parse_answer(text: str) -> tuple[str, str] | None:
    """(title, summary) from a {"title", "summary"} JSON object or a "TITLE: ... SUMMARY: ..." answer, or
    None when it follows neither."""
    stripped = text.strip()
    if "{" in stripped:
        parsed = _parse_json(stripped)
        if parsed is not None:
            return parsed
    match = _ANSWER.search(stripped)
    if not match:
        return None
    return _clean(match.group("title"), match.group("summary"))
