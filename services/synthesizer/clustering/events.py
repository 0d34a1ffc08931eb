"""The events backend (the default): clusters that follow events, not topics.

Built as news-event clustering research does it, within a CPU budget:

1. **Pair score.** For two articles, the probability that they report the same event, from a logistic
   model over four agreements: TF-IDF cosine of their words (what happened), IDF-weighted cosine of
   the names they carry (where, who: :mod:`.entities`), the days between their publications (when:
   a follow-up days later that names the same people, such as the charging of a director after a
   collapse, or a company's other announcement, is another event) and time anchoring (whether one of
   them speaks mostly of years long past: a history of the town's trams is not a report of its new
   tram line, however many streets they share: :mod:`.timeref`). The weights were fitted once on
   labelled pairs (``python -m devtools.corpus.calibrate`` prints them and the sweep), so the
   threshold is a probability rather than a cosine that means something else for each corpus.
2. **Candidates.** Only pairs where one article's strong, uncommon word or name occurs in the other
   are scored (inverted indexes, looked up both ways), so the cost grows with the articles, not with
   their square.
3. **Average linkage** over those scores, with a veto on merging two clusters that each keep naming
   something the other never names (:mod:`.linkage`).

A function of the article set: articles are taken in id order, and ties go to the lowest numbers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from services.synthesizer.clustering.entities import lowercase_words, names
from services.synthesizer.clustering.linkage import average_linkage
from services.synthesizer.clustering.tfidf import (
    MIN_IDF_DOCS,
    Cluster,
    Doc,
    _vectors,
    cluster_key,
)
from services.synthesizer.clustering.timeref import far_share

#: the fitted pair model: logit = WORDS * TF-IDF cosine + NAMES * names cosine + DAYS * days between
#: the publications + TIME * time_feature (the time anchoring) + BIAS
#: (``python -m devtools.corpus.calibrate``: the sample plus half of dev-news's events)
WORDS = 56.78
NAMES = 9.92
DAYS = -1.59
TIME = -11.78
BIAS = -5.55
#: the days counted for a pair when either publication time is unknown: the mean gap of the
#: calibration's same-event pairs, so an undated pair is scored as a typical one of an event
UNKNOWN_DAYS = 0.46
#: the time term is the larger far share of the pair squared, so that a report with one background
#: year beside its own dates (a third far) weighs a ninth of a piece whose dates nearly all lie in the
#: past (the square fitted the calibration pairs better than the share itself: log-loss 0.0628
#: against 0.0655; ``python -m devtools.corpus.variants``)
TIME_POWER = 2
#: average same-event probability at which two clusters merge (calibrated with the weights: the middle
#: of the widest range where the calibration sets' clustering meets the goals and does not change)
DEFAULT_THRESHOLD = 0.38
#: an article is compared with the articles that share one of its CANDIDATE_TERMS strongest uncommon
#: terms (words or names) weighing at least CANDIDATE_FLOOR of its strongest one; the floor keeps
#: everyday words out of the index, which would make the comparisons quadratic
CANDIDATE_TERMS = 25
CANDIDATE_FLOOR = 0.25
#: pairs less likely than this are left out of the graph (they would count about 0 in any mean)
FLOOR = 0.01


def _name_vectors(docs: Sequence[Doc]) -> list[dict[str, float]]:
    """Unit vectors of each article's names, weighted by IDF over the set (at least MIN_IDF_DOCS)."""
    common = lowercase_words(t for d in docs for t in (d.title, d.text))
    sets = [names(f"{d.title}\n{d.text}", common) for d in docs]
    df: Counter[str] = Counter()
    for s in sets:
        df.update(s)
    n = max(len(docs), MIN_IDF_DOCS)
    out = []
    for s in sets:
        vec = {e: math.log((1 + n) / (1 + df[e])) + 1 for e in s}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        out.append({e: w / norm for e, w in vec.items()})
    return out


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def _candidate_terms(words: dict[str, float], names: dict[str, float], common: frozenset[str]) -> list[str]:
    """The strongest uncommon words, and the strongest names (prefixed: a name and a word are
    different keys of one index)."""
    out = []
    for weights, prefix, most in ((words, "", CANDIDATE_TERMS), (names, "@", CANDIDATE_TERMS // 5)):
        ranked = sorted((t for t in weights if t not in common), key=lambda t: (-weights[t], t))
        if ranked:
            floor = CANDIDATE_FLOOR * weights[ranked[0]]
            out += [prefix + t for t in ranked[:most] if weights[t] >= floor]
    return out


def far_shares(docs: Sequence[Doc]) -> list[float]:
    """Each article's share of time expressions far from its publication (:mod:`.timeref`)."""
    return [far_share(f"{d.title}\n{d.text}", d.published) for d in docs]


def time_feature(far_a: float, far_b: float) -> float:
    """The pair's time-anchoring disagreement: the far share of its more retrospective article to the
    power TIME_POWER."""
    return max(far_a, far_b) ** TIME_POWER


def days_apart(a: Doc, b: Doc) -> float:
    if a.published is None or b.published is None:
        return UNKNOWN_DAYS
    return abs(a.published - b.published) / 86_400


def same_event_probability(words: float, names: float, days: float, far: float = 0.0) -> float:
    logit = WORDS * words + NAMES * names + DAYS * days + TIME * far + BIAS
    return 1.0 / (1.0 + math.exp(min(-logit, 700.0)))  # months apart: about 0, not an overflow


def pair_scores(docs: Sequence[Doc]) -> tuple[dict[tuple[int, int], float], list[frozenset[str]]]:
    """Same-event probabilities of the candidate pairs (i < j, at least FLOOR), and each article's
    names."""
    vectors, common = _vectors(docs)
    name_vectors = _name_vectors(docs)
    far = far_shares(docs)
    tops: dict[str, list[int]] = defaultdict(list)  # key -> earlier articles with it among their tops
    having: dict[str, list[int]] = defaultdict(list)  # key -> earlier articles with it at all
    scores: dict[tuple[int, int], float] = {}
    for j, vec in enumerate(vectors):
        top = _candidate_terms(vec, name_vectors[j], common)
        keys = [*vec, *("@" + e for e in name_vectors[j])]
        found = {i for t in top for i in having.get(t, ())}
        found.update(i for t in keys for i in tops.get(t, ()))
        for i in sorted(found):
            p = same_event_probability(
                _dot(vectors[i], vec),
                _dot(name_vectors[i], name_vectors[j]),
                days_apart(docs[i], docs[j]),
                time_feature(far[i], far[j]),
            )
            if p >= FLOOR:
                scores[i, j] = p
        for t in top:
            tops[t].append(j)
        for t in keys:
            having[t].append(j)
    return scores, [frozenset(v) for v in name_vectors]


def cluster_events(docs: Sequence[Doc], threshold: float) -> list[Cluster]:
    ordered = sorted(docs, key=lambda d: d.id)
    scores, doc_names = pair_scores(ordered)
    clusters = []
    for idxs in average_linkage(scores, doc_names, threshold):
        # most representative first: the highest mean score with the other members
        def centrality(i: int, idxs: list[int] = idxs) -> float:
            others = [k for k in idxs if k != i]
            return (
                sum(scores.get((min(i, k), max(i, k)), 0.0) for k in others) / len(others) if others else 1.0
            )

        ranked = sorted(idxs, key=lambda i: (-centrality(i), ordered[i].id))
        members = [ordered[i] for i in ranked]
        cohesion = sum(centrality(i) for i in idxs) / len(idxs)
        clusters.append(Cluster(cluster_key(members), members, cohesion))
    return clusters


class EventBackend:
    """TF-IDF, name and time agreement, average linkage with the name veto (this module)."""

    name = "events"
    default_threshold = DEFAULT_THRESHOLD

    def cluster(self, docs: Sequence[Doc], threshold: float) -> list[Cluster]:
        return cluster_events(docs, threshold)
