"""Clustering quality against the corpus labels: adjusted Rand index and purity."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import comb


def adjusted_rand_index(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """ARI (Hubert and Arabie, 1985): 1.0 is a perfect match, about 0.0 is chance."""
    n = len(truth)
    contingency = Counter(zip(truth, predicted, strict=True))
    sum_cells = sum(comb(c, 2) for c in contingency.values())
    sum_truth = sum(comb(c, 2) for c in Counter(truth).values())
    sum_pred = sum(comb(c, 2) for c in Counter(predicted).values())
    expected = sum_truth * sum_pred / comb(n, 2)
    best = (sum_truth + sum_pred) / 2
    return 1.0 if best == expected else (sum_cells - expected) / (best - expected)


def purity(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of articles whose cluster's majority label is their own label."""
    by_cluster: dict[str, Counter[str]] = {}
    for t, p in zip(truth, predicted, strict=True):
        by_cluster.setdefault(p, Counter())[t] += 1
    return sum(c.most_common(1)[0][1] for c in by_cluster.values()) / len(truth)


@dataclass(frozen=True)
class StoryQuality:
    """How clusters compare with labelled events, as stories see them (clusters below ``min_size``
    get no story, so their articles are left out)."""

    ari: float
    purity: float
    left_out: float  # share of the articles of multi-article events in no story
    merged: int  # stories holding articles of more than one event
    split: int  # multi-article events spread over more than one story


def story_quality(
    truth: Mapping[str, str], clusters: Sequence[Sequence[str]], min_size: int = 2
) -> StoryQuality:
    """``truth`` maps each article id to its event; ``clusters`` are lists of article ids."""
    label = {a: str(k) for k, c in enumerate(clusters) for a in c}
    ids = sorted(truth)
    events, guess = [truth[a] for a in ids], [label[a] for a in ids]
    sizes = Counter(events)
    stories = [c for c in clusters if len(c) >= min_size]
    in_story = {a: k for k, c in enumerate(stories) for a in c}
    event_articles = [a for a in ids if sizes[truth[a]] > 1]
    left = sum(1 for a in event_articles if a not in in_story)
    spread: dict[str, set[int]] = {}
    for a in event_articles:
        if a in in_story:
            spread.setdefault(truth[a], set()).add(in_story[a])
    return StoryQuality(
        ari=adjusted_rand_index(events, guess),
        purity=purity(events, guess),
        left_out=left / len(event_articles) if event_articles else 0.0,
        merged=sum(1 for c in stories if len({truth[a] for a in c}) > 1),
        split=sum(1 for s in spread.values() if len(s) > 1),
    )
