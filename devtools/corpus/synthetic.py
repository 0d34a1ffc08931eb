"""A synthetic corpus of any size for the transport and scale benchmarks: RSS 2.0 feeds whose items
carry their full text, written to a directory (with a ``manifest.json`` like ``sample/``'s) that
:class:`devtools.corpus.server.CorpusServer` serves.

Each event has its own made-up vocabulary (pronounceable non-words, so no two events share them) and
every article about it mixes that vocabulary with common English words, so TF-IDF clustering has real
work to do and a known answer (``labels``). Deterministic for a given size.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path

from devtools.corpus.build import Item, rss2

START = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)
COMMON = (  # noqa: SIM905 - a word list reads best as text
    "the city council said on monday that the new plan would take effect next month after a long "
    "debate residents asked officials about costs while the mayor promised a public hearing and the "
    "opposition demanded more time experts warned that delays could follow but supporters called it "
    "an important step for the region local businesses welcomed the decision police reported calm "
    "streets schools will reopen as usual and transport services continue with minor changes"
).split()
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"


@dataclass(frozen=True)
class SyntheticCorpus:
    job_paths: list[str]
    labels: dict[str, str]  # article path -> event
    articles: int
    events: int


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))


def _vocabulary(event: int) -> list[str]:
    rng = random.Random(f"event-{event}")  # noqa: S311 - deterministic text, not security
    return [f"{_word(rng, 3)}{event}" for _ in range(10)]


def synthetic_article(event: int, index: int) -> tuple[str, str]:
    rng = random.Random(f"article-{event}-{index}")  # noqa: S311
    vocab = _vocabulary(event)
    figure = 10 + event % 900
    sentences = []
    for _ in range(6):
        words = rng.sample(vocab, 4) + rng.sample(COMMON, 7)
        rng.shuffle(words)
        sentences.append(" ".join(words).capitalize() + f" with {figure} people.")
    title = f"{vocab[0].capitalize()} {vocab[1]} {rng.choice(COMMON)} report {index}"
    return title, " ".join(sentences)


def build_synthetic(root: Path, articles: int, per_event: int = 10, per_feed: int = 250) -> SyntheticCorpus:
    """Write ``articles`` items (``per_event`` per event) into feeds of ``per_feed`` items under ``root``."""
    items: list[Item] = []
    for n in range(articles):
        event, index = divmod(n, per_event)
        title, text = synthetic_article(event, index)
        published = START + dt.timedelta(seconds=n)
        path = f"/a/{event}/{index}"
        items.append(Item(f"event-{event}", "synthetic", path, title, text, published, False))
    # an event's articles are spread over several feeds, as outlets would cover it
    random.Random(articles).shuffle(items)  # noqa: S311
    feeds = root / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    paths = []
    for f, start in enumerate(range(0, len(items), per_feed)):
        slug = f"synthetic-{f}"
        (feeds / f"{slug}.xml").write_text(rss2(f"Synthetic {f}", slug, items[start : start + per_feed]))
        paths.append(f"/feeds/{slug}.xml")
    corpus = SyntheticCorpus(paths, {i.path: i.event for i in items}, articles, -(-articles // per_event))
    manifest = {"articles": corpus.articles, "events": corpus.events, "job_urls": paths}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return corpus
