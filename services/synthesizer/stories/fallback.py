"""The extractive fallback: a story made only of sentences from the cluster's own articles.

Used when the LLM fails for good (or its text fails the grounding check), so every cluster gets a story,
and the story is clearly marked (``fallback=True``, model ``extractive``, a reason).
"""

from __future__ import annotations

from collections.abc import Sequence

from services.synthesizer.stories.prompt import SourceArticle
from services.synthesizer.text import sentences

EXTRACTIVE_MODEL = "extractive"
MAX_SUMMARY_CHARS = 700


def extractive_story(articles: Sequence[SourceArticle]) -> tuple[str, str]:
    """(title, summary): the most representative article's title and the lead sentences of the top ones."""
    title = next((a.title for a in articles if a.title.strip()), "Untitled story")
    picked: list[str] = []
    seen: set[str] = set()
    for article in articles[:4]:
        for sentence in sentences(article.text)[:2]:
            norm = sentence.lower()
            if norm in seen:
                continue
            if sum(len(s) + 1 for s in picked) + len(sentence) > MAX_SUMMARY_CHARS and picked:
                break
            seen.add(norm)
            picked.append(sentence)
    summary = " ".join(picked) or title
    return title.strip(), summary[: MAX_SUMMARY_CHARS * 2]
