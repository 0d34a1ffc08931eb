"""Clustering articles into stories.

Backends (``ClusterBackend``): events (the default, :mod:`services.synthesizer.clustering.events`),
TF-IDF (here) and sentence embeddings (:mod:`services.synthesizer.clustering.dense`, an optional extra).

Similarity is TF-IDF cosine (IDF from the articles being clustered); assignment is greedy: each article,
taken in id order, joins the most similar cluster centroid if the cosine reaches the threshold, else
starts a cluster. Processing in id order makes the result a function of the article *set*, whatever the
order they arrived in.

How a stream's articles are released (provisional clusters, then the final clustering of all of them):
:mod:`services.synthesizer.clustering.stream`.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.synthesizer.text import term_counts

TOP_TERMS = 12  # candidate clusters are found through an article's highest-weighted terms
TOP_TERM_FLOOR = 0.25  # ... among those weighing at least this share of its strongest term
#: IDF counts at least this many documents: in a small set about one event (an early release) the
#: event's own words are in every document and would otherwise weigh almost nothing
MIN_IDF_DOCS = 100


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    text: str
    content_hash: str
    counts: Counter[str] = field(compare=False, hash=False, repr=False)
    #: publication time (seconds since the epoch) when the source states it: events backend's time
    #: agreement
    published: float | None = field(default=None, compare=False)

    @classmethod
    def of(cls, id: str, title: str, text: str, content_hash: str, published: float | None = None) -> Doc:
        return cls(id, title, text, content_hash, term_counts(title, text), published)


@dataclass
class Cluster:
    key: str
    docs: list[Doc]  # most representative first
    cohesion: float


def cluster_key(docs: Iterable[Doc]) -> str:
    return hashlib.sha256("\n".join(sorted(d.content_hash for d in docs)).encode()).hexdigest()[:32]


def _vectors(docs: Sequence[Doc]) -> tuple[list[dict[str, float]], frozenset[str]]:
    """Unit TF-IDF vectors, and the common terms (in more than half of at least MIN_IDF_DOCS
    documents): they weigh little in a cosine and would make every cluster a candidate for every
    article, so they never serve to find candidates (a term in every article of a 10,000-article job
    turned the candidate search quadratic)."""
    n = max(len(docs), MIN_IDF_DOCS)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.counts.keys())
    out = []
    for d in docs:
        vec = {t: (1 + math.log(c)) * (math.log((1 + n) / (1 + df[t])) + 1) for t, c in d.counts.items()}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        out.append({t: w / norm for t, w in vec.items()})
    return out, frozenset(t for t, c in df.items() if 2 * c > n)


def _top_terms(vec: dict[str, float], common: frozenset[str]) -> list[str]:
    """Up to TOP_TERMS of the highest-weighted terms, leaving out common terms and terms weighing less
    than TOP_TERM_FLOOR of the strongest one (everyday words an article happens to repeat): a cosine
    above the threshold needs shared strong terms, and weak ones only widen the search."""
    ranked = sorted(vec, key=lambda t: (-vec[t], t))
    if not ranked:
        return []
    floor = TOP_TERM_FLOOR * vec[ranked[0]]
    return [t for t in ranked if t not in common and vec[t] >= floor][:TOP_TERMS] or ranked[:TOP_TERMS]


def cluster_docs(docs: Sequence[Doc], threshold: float) -> list[Cluster]:
    """Deterministic clustering of a set of documents (see the module docstring)."""
    ordered = sorted(docs, key=lambda d: d.id)
    vectors, common = _vectors(ordered)
    sums: list[dict[str, float]] = []
    norms2: list[float] = []
    members: list[list[int]] = []
    index: dict[str, set[int]] = defaultdict(set)
    for i, vec in enumerate(vectors):
        top = _top_terms(vec, common)
        candidates = sorted({c for t in top for c in index.get(t, ())})
        best, best_sim, best_dot = -1, 0.0, 0.0
        for c in candidates:
            centroid = sums[c]
            dot = sum(w * centroid.get(t, 0.0) for t, w in vec.items())
            sim = dot / math.sqrt(norms2[c]) if norms2[c] > 0 else 0.0
            if sim > best_sim:
                best, best_sim, best_dot = c, sim, dot
        if best >= 0 and best_sim >= threshold:
            centroid = sums[best]
            for t, w in vec.items():
                centroid[t] = centroid.get(t, 0.0) + w
            norms2[best] += 2 * best_dot + 1.0  # |s + v|^2 with |v| = 1
            members[best].append(i)
            target = best
        else:
            sums.append(dict(vec))
            norms2.append(1.0)
            members.append([i])
            target = len(sums) - 1
        for t in top:
            index[t].add(target)
    _merge_similar(sums, norms2, members, threshold, common)
    clusters = []
    for c, idxs in enumerate(members):
        if not idxs:
            continue
        norm = math.sqrt(norms2[c]) or 1.0
        scored = sorted(
            ((sum(w * sums[c].get(t, 0.0) for t, w in vectors[i].items()) / norm, ordered[i]) for i in idxs),
            key=lambda pair: (-pair[0], pair[1].id),
        )
        members_docs = [d for _, d in scored]
        cohesion = sum(s for s, _ in scored) / len(scored)
        clusters.append(Cluster(cluster_key(members_docs), members_docs, cohesion))
    return clusters


def _cosine(a: dict[str, float], a_norm2: float, b: dict[str, float], b_norm2: float) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(w * b.get(t, 0.0) for t, w in a.items())
    return dot / math.sqrt(a_norm2 * b_norm2) if a_norm2 > 0 and b_norm2 > 0 else 0.0


def _merge_similar(
    sums: list[dict[str, float]],
    norms2: list[float],
    members: list[list[int]],
    threshold: float,
    common: frozenset[str],
) -> None:
    """Second pass: merge clusters whose centroids are at least ``threshold`` similar, most similar pair
    first (ties: lowest cluster numbers). The greedy pass depends on the order articles are taken in;
    this pass repairs the splits an unlucky order makes (an event whose first articles share little
    text). Two clusters are compared when one's top terms occur in the other. Candidate pairs sit in a
    heap; a merge re-scores only the pairs of the merged cluster. Emptied clusters keep an empty member
    list."""
    alive = {c for c, m in enumerate(members) if m}
    tops: dict[int, list[str]] = {}
    by_top: dict[str, set[int]] = defaultdict(set)  # top term -> clusters with it among their top terms
    by_term: dict[str, set[int]] = defaultdict(set)  # term -> clusters containing it
    version = dict.fromkeys(alive, 0)

    def index(c: int) -> None:
        tops[c] = _top_terms(sums[c], common)
        for t in tops[c]:
            by_top[t].add(c)
        for t in sums[c]:
            by_term[t].add(c)

    def unindex(c: int) -> None:
        for t in tops.pop(c):
            by_top[t].discard(c)
        for t in sums[c]:
            by_term[t].discard(c)

    def neighbours(a: int) -> set[int]:
        found = {b for t in sums[a] if t in by_top for b in by_top[t]}
        found.update(b for t in tops[a] for b in by_term[t])
        found.discard(a)
        return found

    def scored(a: int, others: Iterable[int]) -> Iterable[tuple[float, int, int, int, int]]:
        for b in others:
            sim = _cosine(sums[a], norms2[a], sums[b], norms2[b])
            if sim >= threshold:
                x, y = min(a, b), max(a, b)
                yield (-sim, x, y, version[x], version[y])

    for c in sorted(alive):
        index(c)
    heap = [p for a in sorted(alive) for p in scored(a, (b for b in neighbours(a) if b > a))]
    heapq.heapify(heap)
    while heap:
        _, a, b, va, vb = heapq.heappop(heap)
        if a not in alive or b not in alive or version[a] != va or version[b] != vb:
            continue  # stale: one of the two changed or is gone
        unindex(a)
        unindex(b)
        dot = sum(w * sums[a].get(t, 0.0) for t, w in sums[b].items())
        for t, w in sums[b].items():
            sums[a][t] = sums[a].get(t, 0.0) + w
        norms2[a] += norms2[b] + 2 * dot
        members[a] += members[b]
        members[b] = []
        sums[b] = {}
        alive.discard(b)
        version[a] += 1
        index(a)
        for pair in scored(a, sorted(neighbours(a))):
            heapq.heappush(heap, pair)


class ClusterBackend(Protocol):
    """How a set of articles becomes clusters: deterministic for the same set."""

    name: str
    #: the similarity threshold used when a job does not set one
    default_threshold: float

    def cluster(self, docs: Sequence[Doc], threshold: float) -> list[Cluster]: ...


class TfidfBackend:
    """Greedy TF-IDF centroids (this module)."""

    name = "tfidf"
    default_threshold = 0.3  # as the original system

    def cluster(self, docs: Sequence[Doc], threshold: float) -> list[Cluster]:
        return cluster_docs(docs, threshold)
