"""The grounding check: a generated story is accepted only if what it states is in its articles.

Rules (each failure is a reason string):
- title and summary are non-empty and within length bounds;
- it is not a copy of the prompt (instructions or the "Article N:" scaffolding);
- every number it states appears in the source articles (thousands separators ignored);
- every capitalised word that is not the first of a sentence (names, places, months: the facts a small
  model invents) appears in the source articles (a possessive counts as its name; in the title, which is
  often in Title Case, in any letter case);
- no sentence is repeated (the loop a small model falls into, which passes the fact checks).
This is stricter than asking for overlap: one invented name or figure rejects the story.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.synthesizer.stories.prompt import SourceArticle

MIN_SUMMARY, MAX_SUMMARY, MAX_TITLE = 40, 2500, 200
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_SCAFFOLD = ("careful news editor", "article 1:", "title:", "summary:", "answer in exactly this format")
#: capitalised words that are not facts
_ALLOWED = frozenset(
    {"I", "A", "An", "The", "This", "That", "These", "Those", "It", "In", "On", "At", "For", "And", "But",
     "Or", "As", "By", "With", "After", "Before", "While", "According", "Officials", "Meanwhile", "However"}
)  # fmt: skip


def _numbers(text: str) -> set[str]:
    return {m.replace(",", "") for m in _NUMBER.findall(text)}


def _capitalised(text: str) -> set[str]:
    """Capitalised words that do not start a sentence, possessives reduced to the name."""
    found: set[str] = set()
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n+", text):
        words = [re.sub("['\\u2019]s$", "", w) for w in _WORD.findall(sentence)]
        found.update(w for w in words[1:] if w and w[0].isupper() and w not in _ALLOWED)
    return found


def _repeated_sentence(text: str) -> str | None:
    seen: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        key = " ".join(sentence.lower().split())
        if len(key) > 20 and key in seen:
            return sentence[:60]
        seen.add(key)
    return None


def check(title: str, summary: str, articles: Sequence[SourceArticle]) -> list[str]:
    """Reasons to reject the story; empty when it is grounded."""
    problems: list[str] = []
    if not title.strip() or len(title) > MAX_TITLE:
        problems.append(f"title length {len(title)} outside 1..{MAX_TITLE}")
    if not MIN_SUMMARY <= len(summary) <= MAX_SUMMARY:
        problems.append(f"summary length {len(summary)} outside {MIN_SUMMARY}..{MAX_SUMMARY}")
    story = f"{title}\n{summary}"
    lowered = story.lower()
    if any(marker in lowered for marker in _SCAFFOLD):
        problems.append("copies the prompt")
    source = "\n".join(f"{a.title}\n{a.text}" for a in articles)
    source_words = set(_WORD.findall(source))
    missing_numbers = sorted(_numbers(story) - _numbers(source))
    if missing_numbers:
        problems.append("numbers not in the articles: " + ", ".join(missing_numbers[:5]))
    repeated = _repeated_sentence(summary)
    if repeated:
        problems.append(f"repeats a sentence: {repeated!r}")
    # headlines are often in Title Case: there a word may appear in the sources in any case
    lower_words = {w.lower() for w in source_words}
    missing = {w for w in _capitalised(summary) if w not in source_words}
    missing |= {w for w in _capitalised(title) if w not in source_words and w.lower() not in lower_words}
    missing_names = sorted(missing)
    if missing_names:
        problems.append("names not in the articles: " + ", ".join(missing_names[:5]))
    return problems
