"""The grounding check: a generated story is accepted only if what it states is in its articles, and it
reads as a story written from them.

Rules (each failure is a :class:`Problem`: a stable ``code``, counted in the job totals, and a detail):
- ``length``: title and summary are non-empty and within length bounds;
- ``prompt_scaffolding``: it is not a copy of the prompt (instructions, "Article N:" labels, the answer
  template);
- ``invented_number``: every number it states appears in the source articles (thousands separators
  ignored);
- ``invented_name``: every capitalised word that is not the first of a sentence (names, places, months:
  the facts a small model invents) appears in the source articles (a possessive counts as its name; in
  the title, which is often in Title Case, in any letter case);
- ``mixed_facts``: the names and numbers of one sentence are all found together in at least one article
  (a sentence that takes a name from one article and a figure from another states a fact no article
  states: "Calder won 12,405 votes" when 12,405 was her rival's count);
- ``repeated_sentence`` / ``repeated_ngram``: no sentence, and no run of ``NGRAM`` words, is repeated
  (the loop a small model falls into, which passes the fact checks);
- ``unfinished``: the summary ends with a finished sentence (not cut off by the token limit);
- ``extractive``: at most ``EXTRACTIVE_SHARE`` of the summary's words are verbatim runs of one article
  (a copied lead is an extract, not a story: the extractive fallback says so honestly).
This is stricter than asking for overlap: one invented name or figure rejects the story.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.synthesizer.stories.prompt import SourceArticle

MIN_SUMMARY, MAX_SUMMARY, MAX_TITLE = 40, 2500, 200
#: a run of this many words seen twice in the summary is a loop
NGRAM = 5
#: words in verbatim runs of at least VERBATIM_RUN words from one article, as a share of the summary
EXTRACTIVE_SHARE, VERBATIM_RUN = 0.8, 4
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,'\-][a-z0-9]+)*")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
_FINISHED = re.compile(r"[.!?][\"'\u201d\u2019)]*$")
_SCAFFOLD = (
    "careful news editor", "article 1:", "article 2:", "title:", "summary:",
    "answer in exactly this format", "answer as", "<headline>", "<one-line headline>", "sentences>",
    '"title"', '"summary"', "from these notes", "use only names and numbers", "in your own words",
)  # fmt: skip
#: capitalised words that are not facts
_ALLOWED = frozenset(
    {"I", "A", "An", "The", "This", "That", "These", "Those", "It", "In", "On", "At", "For", "And", "But",
     "Or", "As", "By", "With", "After", "Before", "While", "According", "Officials", "Meanwhile", "However"}
)  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """One reason to reject a story: ``code`` (stable, counted in the job totals) and a readable detail."""

    code: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def _numbers(text: str) -> set[str]:
    return {m.replace(",", "") for m in _NUMBER.findall(text)}


def _split(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?:;])\s+|\n+", text) if s.strip()]


def _names(sentence: str) -> set[str]:
    words = [re.sub("['\\u2019]s$", "", w) for w in _WORD.findall(sentence)]
    return {w for w in words[1:] if w and w[0].isupper() and w not in _ALLOWED}


def _capitalised(text: str) -> set[str]:
    """Capitalised words that do not start a sentence, possessives reduced to the name."""
    found: set[str] = set()
    for sentence in _split(text):
        found |= _names(sentence)
    return found


def _repeated_sentence(text: str) -> str | None:
    seen: set[str] = set()
    for sentence in _SENTENCE_SPLIT.split(text):
        key = " ".join(sentence.lower().split())
        if len(key) > 20 and key in seen:
            return sentence[:60]
        seen.add(key)
    return None


def _ngrams(words: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _repeated_ngram(text: str) -> str | None:
    seen: set[tuple[str, ...]] = set()
    for gram in _ngrams(_TOKEN.findall(text.lower()), NGRAM):
        if gram in seen:
            return " ".join(gram)
        seen.add(gram)
    return None


def verbatim_share(summary: str, article: SourceArticle) -> float:
    """The share of the summary's words that lie in a run of VERBATIM_RUN or more words of the article."""
    words = _TOKEN.findall(summary.lower())
    if len(words) < VERBATIM_RUN:
        return 0.0
    source = set(_ngrams(_TOKEN.findall(f"{article.title}\n{article.text}".lower()), VERBATIM_RUN))
    covered = [False] * len(words)
    for i, gram in enumerate(_ngrams(words, VERBATIM_RUN)):
        if gram in source:
            covered[i : i + VERBATIM_RUN] = [True] * VERBATIM_RUN
    return sum(covered) / len(words)


def _mixed_facts(story: str, articles: Sequence[SourceArticle], ignore_case: bool) -> str | None:
    """The first sentence whose sourced names and numbers no single article has together."""
    fold = str.lower if ignore_case else str
    known = [({fold(w) for w in _WORD.findall(f"{a.title}\n{a.text}")}, _numbers(f"{a.title}\n{a.text}"))
             for a in articles]  # fmt: skip
    all_words = set().union(*(k[0] for k in known)) if known else set()
    all_numbers = set().union(*(k[1] for k in known)) if known else set()
    for sentence in _split(story):
        names = {fold(n) for n in _names(sentence)} & all_words
        numbers = _numbers(sentence) & all_numbers
        if len(names) + len(numbers) < 2:
            continue
        if not any(names <= words and numbers <= nums for words, nums in known):
            return sentence[:80]
    return None


def check(title: str, summary: str, articles: Sequence[SourceArticle]) -> list[Problem]:
    """Reasons to reject the story; empty when it is grounded."""
    problems: list[Problem] = []
    if not title.strip() or len(title) > MAX_TITLE:
        problems.append(Problem("length", f"title length {len(title)} outside 1..{MAX_TITLE}"))
    if not MIN_SUMMARY <= len(summary) <= MAX_SUMMARY:
        problems.append(
            Problem("length", f"summary length {len(summary)} outside {MIN_SUMMARY}..{MAX_SUMMARY}")
        )
    story = f"{title}\n{summary}"
    lowered = story.lower()
    if any(marker in lowered for marker in _SCAFFOLD):
        problems.append(Problem("prompt_scaffolding", "copies the prompt"))
    source = "\n".join(f"{a.title}\n{a.text}" for a in articles)
    source_words = set(_WORD.findall(source))
    missing_numbers = sorted(_numbers(story) - _numbers(source))
    if missing_numbers:
        problems.append(
            Problem("invented_number", "numbers not in the articles: " + ", ".join(missing_numbers[:5]))
        )
    repeated = _repeated_sentence(summary)
    if repeated:
        problems.append(Problem("repeated_sentence", f"repeats a sentence: {repeated!r}"))
    gram = _repeated_ngram(summary)
    if gram and not repeated:
        problems.append(Problem("repeated_ngram", f"repeats {NGRAM} words: {gram!r}"))
    if summary.strip() and not _FINISHED.search(summary.strip()):
        problems.append(Problem("unfinished", f"the last sentence is unfinished: {summary.strip()[-40:]!r}"))
    # headlines are often in Title Case: there a word may appear in the sources in any case
    lower_words = {w.lower() for w in source_words}
    missing = {w for w in _capitalised(summary) if w not in source_words}
    missing |= {w for w in _capitalised(title) if w not in source_words and w.lower() not in lower_words}
    missing_names = sorted(missing)
    if missing_names:
        problems.append(
            Problem("invented_name", "names not in the articles: " + ", ".join(missing_names[:5]))
        )
    mixed = _mixed_facts(summary, articles, ignore_case=False) or _mixed_facts(
        title, articles, ignore_case=True
    )
    if mixed:
        problems.append(Problem("mixed_facts", f"names and numbers from different articles: {mixed!r}"))
    if articles and summary.strip():
        share = max(verbatim_share(summary, a) for a in articles)
        if share >= EXTRACTIVE_SHARE:
            problems.append(Problem("extractive", f"{share:.0%} of the summary is verbatim from one article"))
    return problems
