"""``python -m devtools.corpus.calibrate``: fit the events backend's pair model and its threshold.

The pair model is a logistic regression of "same event" on four agreements of every article pair
(TF-IDF cosine, names cosine, days between the publications, time anchoring), fitted on the
labelled sample plus the calibration half of dev-news (:mod:`devtools.corpus.devnews`), each corpus
weighing the same. The threshold is then the average same-event probability in the middle of the
widest range over which the clustering of those two sets (candidate pairs, average linkage, veto)
meets the issue's goals and does not change: the most stable operating point, rather than the single
best-scoring one, which can sit between two cliffs where one or two articles decide it. The held-back
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

THRESHOLDS = [round(0.1 + 0.05 * k, 2) for k in range(11)]  # the printed sweep
FINE_THRESHOLDS = [round(0.1 + 0.01 * k, 2) for k in range(51)]  # the search for the default
#: the issue's goals (issue 17): a threshold is acceptable where the calibration sets meet them
GOAL_ARI, GOAL_PURITY, GOAL_LEFT_OUT = 0.90, 0.95, 0.05


def labelled_sets() -> dict[str, tuple[list[Doc], dict[str, str]]]:
    sets = {}
    items = compose()
    sets["sample"] = (
        [Doc.of(i.path, i.title, i.text, i.path, i.published.timestamp()) for i in items],
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
        sets[name] = (
            [Doc.of(a.id, a.title, a.text, a.id, a.published) for a in part],
            {a.id: a.event for a in part},
        )
    return sets


def pair_features(docs: Sequence[Doc], truth: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    words, _ = _vectors(docs)
    names = events._name_vectors(docs)
    far = events.far_shares(docs)
    rows, same = [], []
    for j in range(len(docs)):
        for i in range(j):
            rows.append(
                (
                    events._dot(words[i], words[j]),
                    events._dot(names[i], names[j]),
                    events.days_apart(docs[i], docs[j]),
                    events.time_feature(far[i], far[j]),
                )
            )
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


def meets_goals(q: StoryQuality) -> bool:
    """The issue's goals for a corpus: ARI, purity, event articles left out."""
    return q.ari >= GOAL_ARI and q.purity >= GOAL_PURITY and q.left_out <= GOAL_LEFT_OUT


def stable_range(sets: dict[str, tuple[list[Doc], dict[str, str]]]) -> tuple[float, float]:
    """The widest run of FINE_THRESHOLDS over which every set's clustering stays the same and meets
    the goals (ties: the run with the higher summed ARI, then the lower thresholds)."""
    runs: list[tuple[int, float, float, float]] = []  # (-width, -ARI, first, last)
    previous: object = None
    for t in FINE_THRESHOLDS:
        partitions, qualities = [], []
        for docs, truth in sets.values():
            clusters = sorted(sorted(d.id for d in c.docs) for c in events.cluster_events(docs, t))
            partitions.append(clusters)
            qualities.append(story_quality(truth, clusters))
        if not all(meets_goals(q) for q in qualities):
            previous = None
            continue
        if partitions == previous:
            width, ari, first, _ = runs[-1]
            runs[-1] = (width - 1, ari, first, t)
        else:
            runs.append((-1, -sum(q.ari for q in qualities), t, t))
        previous = partitions
    if not runs:
        raise SystemExit("no threshold meets the goals on the calibration sets")
    _, _, first, last = min(runs)
    return first, last


def main() -> int:
    sets = labelled_sets()
    fitted = ["sample", "dev-news calibration half"]
    parts = [pair_features(*sets[name]) for name in fitted if name in sets]
    beta = fit(parts)
    events.WORDS, events.NAMES, events.DAYS, events.TIME, events.BIAS = (round(float(b), 2) for b in beta)
    # an undated pair counts as a typical same-event gap (each corpus weighing the same)
    events.UNKNOWN_DAYS = round(float(np.mean([f[s == 1, 2].mean() for f, s in parts])), 2)
    for constant in ("WORDS", "NAMES", "DAYS", "TIME", "BIAS"):
        print(f"{constant} = {getattr(events, constant)}")
    print(f"UNKNOWN_DAYS = {events.UNKNOWN_DAYS}")
    print("threshold  " + "  ".join(f"{name:>40}" for name in sets))
    for t in THRESHOLDS:
        cells = (
            f"ARI {q.ari:.3f} pur {q.purity:.3f} out {q.left_out:.3f} m{q.merged} s{q.split}"
            for q in (quality(docs, truth, t) for docs, truth in sets.values())
        )
        print(f"{t:9.2f}  " + "  ".join(f"{c:>40}" for c in cells))
    low, high = stable_range({name: sets[name] for name in fitted if name in sets})
    print(f"widest stable range meeting the goals on {' + '.join(fitted)}: {low} to {high}")
    print(f"DEFAULT_THRESHOLD = {round((low + high) / 2, 2)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
