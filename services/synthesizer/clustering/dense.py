"""The embeddings clustering backend: the same greedy pass and merge pass as TF-IDF clustering
(:mod:`services.synthesizer.clustering`), over sentence embeddings instead of sparse term vectors.

Each article is embedded once (title and text; the model reads its first 256 tokens) and remembered by
content hash, so an early release and the final one do not embed an article twice. Deterministic: ids
fix the order, embeddings are a pure function of the text.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cachetools import LRUCache

from services.synthesizer.clustering import Cluster, Doc, cluster_key
from services.synthesizer.clustering.embeddings import MiniLMEncoder

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: cosine between MiniLM embeddings at which an article joins a cluster, when the job does not say;
#: chosen on the labelled sample (docs/performance.md has the sweep)
DEFAULT_THRESHOLD = 0.5
REMEMBERED = 20_000  # embeddings kept by content hash (1.5 KiB each)


class EmbeddingBackend:
    name = "embeddings"
    default_threshold = DEFAULT_THRESHOLD

    def __init__(self, encoder: MiniLMEncoder | None = None) -> None:
        self.encoder = encoder or MiniLMEncoder()
        self._remembered: LRUCache[str, NDArray[np.float32]] = LRUCache(maxsize=REMEMBERED)
        # one backend serves every stream of the process, and releases run in worker threads
        self._lock = threading.Lock()

    def _embed(self, docs: Sequence[Doc]) -> NDArray[np.float32]:
        with self._lock:
            return self._embed_locked(docs)

    def _embed_locked(self, docs: Sequence[Doc]) -> NDArray[np.float32]:
        import numpy as np  # noqa: PLC0415 - optional extra

        found: dict[str, NDArray[np.float32]] = {}
        for d in docs:
            vector = self._remembered.get(d.content_hash)  # a hit is also marked recently used
            if vector is not None:
                found[d.content_hash] = vector
        missing = [d for d in docs if d.content_hash not in found]
        if missing:
            vectors = self.encoder.encode([f"{d.title}. {d.text}" for d in missing])
            for d, v in zip(missing, vectors, strict=True):
                found[d.content_hash] = v
                self._remembered[d.content_hash] = v  # a call larger than the LRU keeps its newest
        out = np.stack([found[d.content_hash] for d in docs]) if docs else np.zeros((0, 1))
        return out.astype(np.float32)

    def cluster(self, docs: Sequence[Doc], threshold: float) -> list[Cluster]:
        import numpy as np  # noqa: PLC0415

        ordered = sorted(docs, key=lambda d: d.id)
        if not ordered:
            return []
        vectors = self._embed(ordered)
        sums = np.zeros_like(vectors)
        members: list[list[int]] = []
        for i, v in enumerate(vectors):
            k = len(members)
            if k:
                norms = np.linalg.norm(sums[:k], axis=1)
                sims = sums[:k] @ v / np.maximum(norms, 1e-12)
                best = int(np.argmax(sims))  # the first of equals: the oldest cluster
                if sims[best] >= threshold:
                    sums[best] += v
                    members[best].append(i)
                    continue
            sums[k] = v
            members.append([i])
        sums = sums[: len(members)]
        _merge_similar(sums, members, threshold)
        clusters = []
        for c, idxs in enumerate(members):
            if not idxs:
                continue
            centroid = sums[c] / max(float(np.linalg.norm(sums[c])), 1e-12)
            scored = sorted(
                ((float(vectors[i] @ centroid), ordered[i]) for i in idxs), key=lambda p: (-p[0], p[1].id)
            )
            members_docs = [d for _, d in scored]
            cohesion = sum(s for s, _ in scored) / len(scored)
            clusters.append(Cluster(cluster_key(members_docs), members_docs, cohesion))
        return clusters


def _merge_similar(sums: NDArray[np.float32], members: list[list[int]], threshold: float) -> None:
    """Merge the most similar pair of centroids while one reaches ``threshold`` (ties: lowest
    numbers). All pairs are compared at once as one matrix product; emptied clusters stay empty."""
    import numpy as np  # noqa: PLC0415

    alive = np.array([bool(m) for m in members])
    while alive.sum() > 1:
        units = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        sims = units @ units.T
        sims[~alive, :] = -2.0
        sims[:, ~alive] = -2.0
        sims[np.tril_indices(len(members))] = -2.0  # each pair once, never a cluster with itself
        a, b = divmod(int(np.argmax(sims)), len(members))
        if sims[a, b] < threshold:
            return
        sums[a] += sums[b]
        sums[b] = 0.0
        members[a] += members[b]
        members[b] = []
        alive[b] = False
