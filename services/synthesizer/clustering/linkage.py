"""Agglomerative clustering with average linkage over a sparse graph of pair scores, and a veto on
merges whose two sides keep naming different things.

Average linkage: the score of two clusters is the mean score over all pairs of their members, a pair
without an edge counting 0. The most similar pair of clusters is merged while that mean reaches the
threshold (ties: lowest cluster numbers), so a cluster grows only while it stays cohesive as a whole;
single linkage would chain look-alikes through one close pair, centroids drift towards a topic.

The veto (``disagree``): two clusters of at least VETO_MIN_SIZE articles are not merged when each has a
name that every one of its articles carries and none of the other's does, unless the merge is nearly
certain (VETO_BELOW) (a cup tie at Kilnsey and a league
match at Marsh Harbour of the same team; fires in two towns). A vetoed pair is looked at again when
either side changes. Deterministic: the result depends only on the items' order, which the caller
fixes by id.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence

#: the veto needs this many articles on each side: two articles sharing a name the other two lack is
#: what two fact sheets of one event look like (the labelled sample splits that way)
VETO_MIN_SIZE = 3
#: ... and applies only to doubtful merges: a mean same-event probability this high is not overruled
#: (articles of one event that happen to repeat different names still belong together)
VETO_BELOW = 0.9


class _Clusters:
    def __init__(self, names: Sequence[frozenset[str]]) -> None:
        n = len(names)
        self.members: list[list[int]] = [[i] for i in range(n)]
        self.names: list[Counter[str]] = [Counter(s) for s in names]
        self.edges: list[dict[int, float]] = [{} for _ in range(n)]  # sums of pair scores
        self.version = [0] * n

    def mean(self, a: int, b: int) -> float:
        return self.edges[a].get(b, 0.0) / (len(self.members[a]) * len(self.members[b]))

    def disagree(self, a: int, b: int) -> bool:
        size_a, size_b = len(self.members[a]), len(self.members[b])
        if min(size_a, size_b) < VETO_MIN_SIZE or self.mean(a, b) >= VETO_BELOW:
            return False
        names_a, names_b = self.names[a], self.names[b]
        return any(c == size_a and names_b[e] == 0 for e, c in names_a.items()) and any(
            c == size_b and names_a[e] == 0 for e, c in names_b.items()
        )

    def merge(self, a: int, b: int) -> None:
        """b into a; b is left empty."""
        for k, w in self.edges[b].items():
            if k == a:
                continue
            self.edges[a][k] = self.edges[a].get(k, 0.0) + w
            self.edges[k][a] = self.edges[k].get(a, 0.0) + w
            del self.edges[k][b]
        self.edges[a].pop(b, None)
        self.edges[b] = {}
        self.members[a] += self.members[b]
        self.members[b] = []
        self.names[a] += self.names[b]
        self.names[b] = Counter()
        self.version[a] += 1
        self.version[b] += 1


def average_linkage(
    scores: Mapping[tuple[int, int], float], names: Sequence[frozenset[str]], threshold: float
) -> list[list[int]]:
    """Clusters (lists of item indexes, ascending) of ``len(names)`` items; ``scores`` holds the pairs
    (i < j) with a score above 0, every other pair scores 0."""
    c = _Clusters(names)
    for (i, j), s in scores.items():
        c.edges[i][j] = c.edges[j][i] = s
    heap = [(-s, i, j, 0, 0) for (i, j), s in scores.items() if s >= threshold]
    heapq.heapify(heap)
    while heap:
        _, a, b, va, vb = heapq.heappop(heap)
        if c.version[a] != va or c.version[b] != vb or not c.members[a] or not c.members[b]:
            continue  # stale: one side changed since this pair was scored
        if c.disagree(a, b):
            continue
        c.merge(a, b)
        for k in sorted(c.edges[a]):
            mean = c.mean(a, k)
            if mean >= threshold:
                x, y = min(a, k), max(a, k)
                heapq.heappush(heap, (-mean, x, y, c.version[x], c.version[y]))
    return [sorted(m) for m in c.members if m]
