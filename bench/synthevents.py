"""Synthetic events for the adaptive scenario that are told apart the way real events are.

``devtools.corpus.synthetic`` writes every article from its event's ten made-up words and seven words
per sentence from one pool of 70 everyday words shared by all events, with no names. Two articles of
different events then share a third of their words: on 32 events of 2 articles their words' TF-IDF
cosine averages 0.089 and exceeds 0.1 for 24 % of the pairs, where the sample corpus's real reports of
different events average 0.008 (0.07 % over 0.1). The default clustering, fitted on real news (where
two outlets' reports of one event may agree no more than 0.14), reads such a pair as one event with a
probability near 0.7, and merged 4 of the 32 pairs. Real reports of different events differ in their
everyday words (drawn from a language, not from 70 words) and in their names (places, people).

Here the everyday words are drawn from the sample corpus's own lower-case words, as often as they occur
there, and each event has a place name that its articles open with; the event's own words, the figure
and the shape of the articles are the synthetic corpus's.
"""

from __future__ import annotations

import functools
import random
import re

from storywire.v1 import common_pb2

from devtools.corpus.build import as_article, compose

_LOWER = re.compile(r"\b[a-z][a-z'-]*[a-z]\b")
CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"


@functools.cache
def everyday_words() -> tuple[str, ...]:
    """Every lower-case word occurrence of the sample corpus (so a draw follows their frequency)."""
    return tuple(w for item in compose() for w in _LOWER.findall(item.text))


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))


def event_article(event: int, index: int) -> tuple[str, str]:
    """(title, text) of article ``index`` about ``event``: six sentences of four of the event's ten
    words and seven everyday words, the first opening with the event's place."""
    vocab_rng = random.Random(f"event-{event}")
    vocab = [f"{_word(vocab_rng, 3)}{event}" for _ in range(10)]
    place = _word(vocab_rng, 3).capitalize() + "ton"
    rng = random.Random(f"article-{event}-{index}")
    common = everyday_words()
    figure = 10 + event % 900
    sentences = []
    for _ in range(6):
        words = rng.sample(vocab, 4) + [rng.choice(common) for _ in range(7)]
        rng.shuffle(words)
        sentences.append(" ".join(words).capitalize() + f" with {figure} people.")
    sentences[0] = f"In {place}, {sentences[0][0].lower()}{sentences[0][1:]}"
    title = f"{place} {vocab[0]} {vocab[1]} report {index}"
    return title, " ".join(sentences)


def event_articles(events: int, salt: str, per_event: int = 2) -> list[common_pb2.Article]:
    """``events`` events of ``per_event`` articles each."""
    return [
        as_article(f"http://synthetic.test/{salt}/{e}/{i}", *event_article(e, i))
        for e in range(events)
        for i in range(per_event)
    ]
