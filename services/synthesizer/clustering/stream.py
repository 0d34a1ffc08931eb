"""The articles of one synthesis stream: provisional clusters while it runs, the final clustering at its end.

Release rule (documented in docs/architecture.md): when the input has been quiet for a while (the
session decides when, and how many: :mod:`services.synthesizer.session`), the articles that are in no
provisional cluster yet are clustered, and clusters that reach ``min_articles_per_story`` and are
*settled* are released as *provisional*, up to a limit, the biggest first (their stories are written
straight away: time to first story). Settled: no member has arrived for ``SETTLE_GAPS`` times the
cluster's expected gap between members: the stream's active span (its first to its latest article) over
the cluster's size less one (``(size - 1) / span`` is the unbiased estimate of a Poisson rate from
``size`` arrivals; ``size / span`` let a cluster whose members all came in a job's first feed pass after
the second feed, and be retired at the end). A cluster whose event still trickles in keeps growing, and
its provisional story would be retired: one LLM call for nothing. Under a steady stream the expected gap
is long (a cluster of 5 in a 20 s stream: 5 s, so 30 s without a new member), so such clusters wait for
the end; after a burst followed by a pause (a slow source) it is short, so they go at once. Only the
first release may hand out a cluster that is not settled (the biggest, when none is): the first story
comes early whatever the stream, at the cost of at most one retired story.

When the input ends, ALL the stream's articles are clustered at once: these final clusters are the
result, whatever the arrival timing. A provisional cluster whose key is a final cluster's key is
confirmed; any other is retired, replaced by the final clusters that hold its articles. Final clusters
smaller than ``min_articles_per_story`` leave their articles out, each with its reason.

Only the ``ClusterBackend`` protocol is used here (``cluster(docs, threshold)``, deterministic for a set
of documents), so the final clusters are a function of the article set alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.synthesizer.clustering.tfidf import Cluster, ClusterBackend, Doc, TfidfBackend

#: a cluster is settled when no member has come for this many expected gaps. A cluster still growing at a
#: steady rate shows such a pause with probability e**-6 = 0.25 % at one release; a long job checks each
#: cluster at every pause of its input (tens of times), so few of its growing clusters are released.
SETTLE_GAPS = 6.0


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
        #: (last member's arrival, size) of each cluster big enough for a story that the last release held
        self._held: list[tuple[float, int]] = []
        self.arrived: dict[str, float] = {}  # article id -> when it (last) arrived, on the caller's clock
        self._span: tuple[float, float] | None = None  # the stream's first and latest arrival
        self._new: dict[str, float] = {}  # open article id -> first arrival since the last release
        self._biggest = 0  # the biggest cluster a release of this stream has clustered so far

    @property
    def held(self) -> int:
        """Clusters big enough for a story that the last release held back."""
        return len(self._held)

    @property
    def seen(self) -> int:
        """Distinct articles received."""
        return len(self.docs)

    def add(self, doc: Doc, at: float = 0.0) -> None:
        """One article, arrived at ``at`` (seconds, any monotonic clock the caller also gives ``release``)."""
        self.received += 1
        self.docs[doc.id] = doc
        self.arrived[doc.id] = at
        self._span = (self._span[0], at) if self._span is not None else (at, at)
        if doc.id not in self._released:
            self.open[doc.id] = doc
            self._new.setdefault(doc.id, at)

    def _settles_at(self, last_member: float, size: int) -> float:
        """When a cluster is settled if nothing more arrives: its last member's arrival plus
        ``SETTLE_GAPS`` expected gaps (the module docstring)."""
        first, latest = self._span if self._span is not None else (0.0, 0.0)
        return last_member + SETTLE_GAPS * (latest - first) / max(size - 1, 1)

    def settles_at(self, cluster: Cluster) -> float:
        return self._settles_at(max(self.arrived[d.id] for d in cluster.docs), len(cluster.docs))

    def settled(self, cluster: Cluster, now: float) -> bool:
        return now >= self.settles_at(cluster)

    def next_settle(self) -> float | None:
        """No cluster is expected to be settled before this time, with the span as it is now (None:
        nothing held, no skip); the session skips releases until then (clustering everything open at
        each pause of a long job's input, for nothing, cost more than the final clustering). The
        earliest of:

        - when a cluster the last release held back is settled: articles that arrived since widen the
          span or join it, so they make it settle later, not sooner;
        - when a cluster of the articles that arrived since the last release can be: its last member
          came at or after the first of them, and it is taken to be no bigger than their number, nor
          than the biggest cluster this stream's releases have clustered. Without this bound one small
          held cluster that settles late kept a later burst, settled long before, waiting for the end.
          It counts only once at least ``min_size`` articles are new. It is a guess: a burst's cluster
          bigger than any seen, or one that takes in older open articles, may settle before it.
          Counting every open article instead holds for any size, but it let nearly every pause of a
          long job cluster everything open (docs/architecture.md, "Settled clusters")."""
        held = [self._settles_at(last, size) for last, size in self._held]
        size = min(len(self._new), self._biggest)
        if held and size >= self.min_size:
            held.append(self._settles_at(next(iter(self._new.values())), size))  # the first of them
        return min(held, default=None)

    def release(self, limit: int | None = None, now: float = 0.0) -> list[Cluster]:
        """Provisional clusters among the open articles (those big enough and settled at ``now``), sorted
        by key: at most ``limit`` of them, the most settled first (the biggest, then the most cohesive);
        the others stay open, counted in ``held`` (``next_settle``: when the first of them settles). The
        first release, when no cluster is settled, hands out the biggest one anyway (time to first
        story)."""
        clusters = self.backend.cluster(list(self.open.values()), self.threshold)
        ready = sorted(
            (c for c in clusters if len(c.docs) >= self.min_size),
            key=lambda c: (-len(c.docs), -c.cohesion, c.key),
        )
        candidates = [c for c in ready if self.settled(c, now)]
        if not candidates and not self.provisional:
            candidates = ready[:1]
        chosen = candidates if limit is None else candidates[:limit]
        taken = {c.key for c in chosen}
        self._new = {}
        self._biggest = max(self._biggest, max((len(c.docs) for c in clusters), default=0))
        self._held = [
            (max(self.arrived[d.id] for d in c.docs), len(c.docs)) for c in ready if c.key not in taken
        ]
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
