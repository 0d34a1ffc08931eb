"""The articles of one synthesis stream: provisional clusters while it runs, the final clustering at its end.

Release rule (documented in docs/architecture.md): when the input has been quiet for a while (the
session decides when, and how many: :mod:`services.synthesizer.session`), the articles that are in no
provisional cluster yet are clustered, and clusters that reach ``min_articles_per_story`` are released
as *provisional*, up to a limit, the biggest first (their stories are written straight away: time to
first story). When the input ends, ALL the stream's articles are clustered at once: these
final clusters are the result, whatever the arrival timing. A provisional cluster whose key is a final
cluster's key is confirmed; any other is retired, replaced by the final clusters that hold its articles.
Final clusters smaller than ``min_articles_per_story`` leave their articles out, each with its reason.

Only the ``ClusterBackend`` protocol is used here (``cluster(docs, threshold)``, deterministic for a set
of documents), so the final clusters are a function of the article set alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.synthesizer.clustering.tfidf import Cluster, ClusterBackend, Doc, TfidfBackend


@dataclass(frozen=True)
class Retirement:
    """A provisional cluster that the final clustering did not confirm."""

    key: str
    replaced_by: list[str]  # final cluster keys (big enough for a story) that hold its articles


@dataclass
class FinalOutcome:
    """What the end of the input decides."""

    final: list[Cluster]  # every final cluster big enough for a story, sorted by key
    new: list[Cluster]  # the final clusters that have no provisional story yet (to write now)
    retired: list[Retirement]
    #: (article id, size of its final cluster) for every article in a final cluster below min_size
    left_out: list[tuple[str, int]] = field(default_factory=list)


class StreamClusterer:
    """Holds every article of one stream; ``release`` hands out provisional clusters, ``finish`` the final
    ones (see the module docstring)."""

    def __init__(self, threshold: float, min_size: int, backend: ClusterBackend | None = None) -> None:
        self.threshold = threshold
        self.min_size = min_size
        self.backend: ClusterBackend = backend or TfidfBackend()
        self.docs: dict[str, Doc] = {}  # every article received, by id (a repeated id replaces the copy)
        self.open: dict[str, Doc] = {}  # articles in no provisional cluster yet
        self.provisional: dict[str, Cluster] = {}  # released before the end, by key
        self.received = 0  # messages, repeated ids included
        self._released: set[str] = set()  # ids in a provisional cluster
        self.held = 0  # clusters big enough for a story that the last release held back

    @property
    def seen(self) -> int:
        """Distinct articles received."""
        return len(self.docs)

    def add(self, doc: Doc) -> None:
        self.received += 1
        self.docs[doc.id] = doc
        if doc.id not in self._released:
            self.open[doc.id] = doc

    def release(self, limit: int | None = None) -> list[Cluster]:
        """Provisional clusters among the open articles (those big enough), sorted by key: at most
        ``limit`` of them, the most settled first (the biggest, then the most cohesive); the others stay
        open, counted in ``held``."""
        clusters = self.backend.cluster(list(self.open.values()), self.threshold)
        ready = sorted(
            (c for c in clusters if len(c.docs) >= self.min_size),
            key=lambda c: (-len(c.docs), -c.cohesion, c.key),
        )
        chosen = ready if limit is None else ready[:limit]
        self.held = len(ready) - len(chosen)
        for c in chosen:
            self.provisional[c.key] = c
            for d in c.docs:
                del self.open[d.id]
                self._released.add(d.id)
        return sorted(chosen, key=lambda c: c.key)

    def finish(self) -> FinalOutcome:
        """Cluster all the articles at once and settle every provisional cluster."""
        clusters = self.backend.cluster(list(self.docs.values()), self.threshold)
        final = sorted((c for c in clusters if len(c.docs) >= self.min_size), key=lambda c: c.key)
        small = [c for c in clusters if len(c.docs) < self.min_size]
        left_out = sorted((d.id, len(c.docs)) for c in small for d in c.docs)
        final_of = {d.id: c.key for c in final for d in c.docs}
        retired = [
            Retirement(key, sorted({final_of[d.id] for d in c.docs if d.id in final_of}))
            for key, c in sorted(self.provisional.items())
            if not any(f.key == key for f in final)
        ]
        new = [c for c in final if c.key not in self.provisional]
        self.open.clear()
        return FinalOutcome(final, new, retired, left_out)
