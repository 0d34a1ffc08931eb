"""``python -m devtools.corpus.calibrate``: fit the events backend's pair model and its threshold.

The pair model is a logistic regression of "same event" on two agreements of every article pair (TF-IDF
cosine, names cosine), fitted on the labelled sample plus the calibration half of dev-news
(:mod:`devtools.corpus.devnews`), each corpus weighing the same. The threshold is then the average
same-event probability that gives the best mean ARI on those two sets with the clustering itself
(candidate pairs, average linkage, veto): the middle of the range that scores best. The held-back
half is printed apart: it took no part in the fit. Prints the constants to put in
``services/synthesizer/clustering/events.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from devtools.corpus import devnews
from devtools.corpus.build import compose
from devtools.corpus.quality import StoryQuality, story_quality
from services.synthesizer.clustering import events
from services.synthesizer.clustering.tfidf import Doc, _vectors

THRESHOLDS = [round(0.1 + 0.05 * k, 2) for k in range(11)]


def labelled_sets() -> dict[str, tuple[list[Doc], dict[str, str]]]:
    sets = {}
    items = compose()
    sets["sample"] = (
        [Doc.of(i.path, i.title, i.text, i.path) for i in items],
        {i.path: i.event for i in items},
    )
    if (reason := devnews.available()) is not None:
        print(f"calibrating on the sample alone: {reason}")
        return sets
    every = devnews.articles()
    for name, part in (
        ("dev-news calibration half", devnews.calibration_half(every)),
        ("dev-news held-back half", devnews.held_back_half(every)),
        ("dev-news", every),
    ):
        sets[name] = ([Doc.of(a.id, a.title, a.text, a.id) for a in part], {a.id: a.event for a in part})
    return sets


def pair_features(docs: Sequence[Doc], truth: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    words, _ = _vectors(docs)
    names = events._name_vectors(docs)
    rows, same = [], []
    for j in range(len(docs)):
        for i in range(j):
            rows.append((events._dot(words[i], words[j]), events._dot(names[i], names[j])))
            same.append(truth[docs[i].id] == truth[docs[j].id])
    return np.array(rows), np.array(same, dtype=float)


def fit(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Weighted logistic regression by Newton's method (a small ridge keeps it finite when separable)."""
    x = np.concatenate([np.hstack([f, np.ones((len(f), 1))]) for f, _ in parts])
    y = np.concatenate([s for _, s in parts])
    w = np.concatenate([np.full(len(s), 1.0 / len(s)) for _, s in parts])
    w /= w.mean()
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-x @ beta))
        gradient = x.T @ (w * (y - p)) - 1e-3 * beta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + 1e-3 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if float(np.abs(step).max()) < 1e-9:
            break
    return beta


def quality(docs: list[Doc], truth: dict[str, str], threshold: float) -> StoryQuality:
    clusters = events.cluster_events(docs, threshold)
    return story_quality(truth, [[d.id for d in c.docs] for c in clusters])


def main() -> int:
    sets = labelled_sets()
    fitted = ["sample", "dev-news calibration half"]
    beta = fit([pair_features(*sets[name]) for name in fitted if name in sets])
    events.WORDS, events.NAMES, events.BIAS = (round(float(b), 2) for b in beta)
    print(f"WORDS = {events.WORDS}\nNAMES = {events.NAMES}\nBIAS = {events.BIAS}")
    scores: dict[float, float] = {}
    print("threshold  " + "  ".join(f"{name:>40}" for name in sets))
    for t in THRESHOLDS:
        results = {name: quality(docs, truth, t) for name, (docs, truth) in sets.items()}
        scores[t] = round(sum(results[name].ari for name in fitted if name in results), 6)
        cells = (
            f"ARI {q.ari:.3f} pur {q.purity:.3f} out {q.left_out:.3f} m{q.merged} s{q.split}"
            for q in results.values()
        )
        print(f"{t:9.2f}  " + "  ".join(f"{c:>40}" for c in cells))
    top = max(scores.values())
    plateau = [t for t, v in scores.items() if v == top]
    middle = round((plateau[0] + plateau[-1]) / 2, 2)  # the middle of the best range: the safest
    print(f"best mean ARI on {' + '.join(fitted)} from {plateau[0]} to {plateau[-1]}")
    print(f"DEFAULT_THRESHOLD = {middle}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
