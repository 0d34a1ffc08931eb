"""Clustering quality against the corpus labels: adjusted Rand index and purity."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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
