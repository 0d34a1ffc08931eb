"""``python -m devtools.corpus.variants``: the measurements behind the time anchoring's form
(docs/performance.md, clustering): each variant of the pair feature refitted on the calibration sets
with its threshold from the stable-range rule, and one pass of cluster-cohesion trimming on the model
without it. Prints quality per set and the look-alikes that still join a story. Sets the events
module's constants for each variant, like ``calibrate``; a development tool, not a test.
"""

from __future__ import annotations

import statistics

import numpy as np

from devtools.corpus import calibrate, devnews
from devtools.corpus.quality import story_quality
from services.synthesizer.clustering import Doc, events, timeref

Sets = dict[str, tuple[list[Doc], dict[str, str]]]
FITTED = ["sample", "dev-news calibration half"]
#: (label, power of the larger far share, or None for no time term; near prior; far days)
VARIANTS: list[tuple[str, int | None, float, int]] = [
    ("no time anchoring", None, 2.0, 365),
    ("larger share", 1, 2.0, 365),
    ("larger share squared, prior 2 (the default)", 2, 2.0, 365),
    ("larger share cubed", 3, 2.0, 365),
    ("larger share, far = 31 days", 1, 2.0, 31),
    ("squared, far = 183 days", 2, 2.0, 183),
    ("squared, far = 3650 days", 2, 2.0, 3650),
    ("squared, prior 0", 2, 1e-9, 365),
    ("squared, prior 1", 2, 1.0, 365),
    ("squared, prior 3", 2, 3.0, 365),
]


def report(sets: Sets, threshold: float, trim_below: float | None = None) -> None:
    for name, (docs, truth) in sets.items():
        clusters = [[d.id for d in c.docs] for c in events.cluster_events(docs, threshold)]
        if trim_below is not None:
            trim(clusters, docs, trim_below)
        q = story_quality(truth, clusters)
        wrong = [] if name == "sample" else devnews.hard_case_report(truth, clusters)
        wrong = [line for line in wrong if "MERGED" in line or "story of" in line]
        print(f"  {name:27} ARI {q.ari:.3f} purity {q.purity:.3f} left out {q.left_out:.3f} "
              f"merged {q.merged} split {q.split}  {'; '.join(wrong)}")  # fmt: skip


def log_loss(parts: list[tuple[np.ndarray, np.ndarray]], beta: np.ndarray) -> float:
    loss = 0.0
    for f, s in parts:
        p = np.clip(1 / (1 + np.exp(-np.hstack([f, np.ones((len(f), 1))]) @ beta)), 1e-12, 1 - 1e-12)
        loss += float(-np.mean(s * np.log(p) + (1 - s) * np.log(1 - p)))
    return loss


def fit_variant(sets: Sets, power: int | None) -> tuple[float, float]:
    """Refit the weights with the larger far share to ``power`` as the time term (None: without
    one); the calibration pairs' log-loss, and the held-back half's (which was seen while choosing)."""
    events.TIME_POWER = power or 1
    parts = [calibrate.pair_features(*sets[name]) for name in FITTED]
    if power is None:
        parts = [(f[:, :3], s) for f, s in parts]
    beta = calibrate.fit(parts)
    if power is None:
        events.WORDS, events.NAMES, events.DAYS, events.BIAS = (float(b) for b in beta)
        events.TIME = 0.0
    else:
        events.WORDS, events.NAMES, events.DAYS, events.TIME, events.BIAS = (float(b) for b in beta)
    held = [calibrate.pair_features(*sets["dev-news held-back half"])]
    if power is None:
        held = [(f[:, :3], s) for f, s in held]
    return log_loss(parts, beta), log_loss(held, beta)


def trim(clusters: list[list[str]], docs: list[Doc], ratio: float) -> None:
    """One trimming pass: a member of a cluster of 3 or more whose mean same-event probability with
    the others is below ``ratio`` of the median of theirs becomes a singleton."""
    ordered = sorted(docs, key=lambda d: d.id)
    pairs, _ = events.pair_scores(ordered)
    scores = {frozenset((ordered[i].id, ordered[j].id)): p for (i, j), p in pairs.items()}
    for c in [c for c in clusters if len(c) >= 3]:
        means = {a: statistics.mean(scores.get(frozenset((a, b)), 0.0) for b in c if b != a) for a in c}
        out = [a for a in c if means[a] < ratio * statistics.median(means[b] for b in c if b != a)]
        for a in out:
            c.remove(a)
            clusters.append([a])


def main() -> int:
    sets: Sets = calibrate.labelled_sets()
    if "dev-news calibration half" not in sets:
        raise SystemExit(devnews.available())
    default = (events.WORDS, events.NAMES, events.DAYS, events.TIME, events.BIAS, events.TIME_POWER)
    for label, power, prior, far_days in VARIANTS:
        timeref.PRIOR_NEAR, timeref.FAR_DAYS = prior, far_days
        loss, held = fit_variant(sets, power)
        low, high = calibrate.stable_range({name: sets[name] for name in FITTED})
        threshold = round((low + high) / 2, 2)
        print(f"{label}: calibration log-loss {loss:.4f} (held-back half {held:.4f}), "
              f"threshold {threshold} (range {low} to {high})")  # fmt: skip
        report(sets, threshold)
    timeref.PRIOR_NEAR, timeref.FAR_DAYS = 2.0, 365
    fit_variant(sets, None)
    low, high = calibrate.stable_range({name: sets[name] for name in FITTED})
    threshold = round((low + high) / 2, 2)
    for ratio in (0.70, 0.79):
        print(f"no time anchoring, threshold {threshold}, then trimming below {ratio} of the median link:")
        report(sets, threshold, ratio)
    events.WORDS, events.NAMES, events.DAYS, events.TIME, events.BIAS, events.TIME_POWER = default
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
