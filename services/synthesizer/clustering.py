"""Clustering articles into stories.

Similarity is TF-IDF cosine (IDF from the articles being clustered); assignment is greedy: each article,
taken in id order, joins the most similar cluster centroid if the cosine reaches the threshold, else
starts a cluster. Processing in id order makes the result a function of the article *set*, whatever the
order they arrived in.

Release rule (documented in docs/architecture.md): articles are clustered when the input stream ends,
and also whenever it has been quiet for ``release_idle`` seconds; clusters that reach
``min_articles_per_story`` at such a point are released at once (and closed: a later article about the
same event starts a new cluster). Smaller clusters stay open until the end of the stream, when they are
reported as unclustered articles.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from services.synthesizer.text import term_counts

TOP_TERMS = 12  # candidate clusters are found through an article's highest-weighted terms
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

    @classmethod
    def of(cls, id: str, title: str, text: str, content_hash: str) -> Doc:
        return cls(id, title, text, content_hash, term_counts(title, text))


@dataclass
class Cluster:
    key: str
    docs: list[Doc]  # most representative first
    cohesion: float


def cluster_key(docs: Iterable[Doc]) -> str:
    return hashlib.sha256("\n".join(sorted(d.content_hash for d in docs)).encode()).hexdigest()[:32]


def _vectors(docs: Sequence[Doc]) -> list[dict[str, float]]:
    n = max(len(docs), MIN_IDF_DOCS)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.counts.keys())
    out = []
    for d in docs:
        vec = {t: (1 + math.log(c)) * (math.log((1 + n) / (1 + df[t])) + 1) for t, c in d.counts.items()}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        out.append({t: w / norm for t, w in vec.items()})
    return out


def cluster_docs(docs: Sequence[Doc], threshold: float) -> list[Cluster]:
    """Deterministic clustering of a set of documents (see the module docstring)."""
    ordered = sorted(docs, key=lambda d: d.id)
    vectors = _vectors(ordered)
    sums: list[dict[str, float]] = []
    norms2: list[float] = []
    members: list[list[int]] = []
    index: dict[str, set[int]] = defaultdict(set)
    for i, vec in enumerate(vectors):
        top = sorted(vec, key=lambda t: (-vec[t], t))[:TOP_TERMS]
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
    _merge_similar(sums, norms2, members, threshold)
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
    sums: list[dict[str, float]], norms2: list[float], members: list[list[int]], threshold: float
) -> None:
    """Second pass: merge clusters whose centroids are at least ``threshold`` similar, most similar pair
    first. The greedy pass depends on the order articles are taken in; this pass repairs the splits an
    unlucky order makes (an event whose first articles share little text). Emptied clusters keep an empty
    member list."""
    alive = {c for c, m in enumerate(members) if m}
    while True:
        index: dict[str, set[int]] = defaultdict(set)
        for c in alive:
            for t in sorted(sums[c], key=lambda t: (-sums[c][t], t))[:TOP_TERMS]:
                index[t].add(c)
        best: tuple[float, int, int] | None = None
        for a in sorted(alive):
            candidates = sorted({b for t in sums[a] if t in index for b in index[t] if b > a})
            for b in candidates:
                sim = _cosine(sums[a], norms2[a], sums[b], norms2[b])
                if sim >= threshold and (best is None or sim > best[0]):
                    best = (sim, a, b)
        if best is None:
            return
        _, a, b = best
        dot = sum(w * sums[a].get(t, 0.0) for t, w in sums[b].items())
        for t, w in sums[b].items():
            sums[a][t] = sums[a].get(t, 0.0) + w
        norms2[a] += norms2[b] + 2 * dot
        members[a] += members[b]
        members[b] = []
        sums[b] = {}
        alive.discard(b)


class StreamClusterer:
    """Holds open articles; ``release`` clusters them and hands out the clusters big enough to write."""

    def __init__(self, threshold: float, min_size: int) -> None:
        self.threshold = threshold
        self.min_size = min_size
        self.open: dict[str, Doc] = {}
        self.seen = 0

    def add(self, doc: Doc) -> None:
        self.seen += 1
        self.open[doc.id] = doc  # a duplicate id replaces the earlier copy

    def release(self) -> list[Cluster]:
        clusters = cluster_docs(list(self.open.values()), self.threshold)
        ready = [c for c in clusters if len(c.docs) >= self.min_size]
        for c in ready:
            for d in c.docs:
                del self.open[d.id]
        return sorted(ready, key=lambda c: c.key)
