"""A cold start probes before it opens up (``probe``, the default): on an unknown backend the first call
runs alone (the backend's best), then two run together, and only once both of the pair have answered,
neither more than 1.5 times its best (the concurrency rule at c = 2), does the limit open to
``initial``. The pair is judged by its slower answer: a backend that serves one call at a time
(llama-server with one slot, Ollama with NUM_PARALLEL=1) answers the first of the pair at solo speed
while the other waits behind it. A CPU-bound or one-slot backend is found after two round trips at a
concurrency of at most 2, where opening at ``initial`` at once put every call in service together
(llama.cpp: the first answer 4 calls late); a batching or rate-limited backend pays two round trips
once in the life of the process. A 5xx, timeout or 429 during the pair ends the probe without opening
(the additive increase takes over from the cut); during the first call alone, a 5xx or timeout leaves
the probe where it is (nothing was learnt about concurrency), and so does one on a call that ran alone
while the limit was already 2 (sparse work: the pair never ran).
"""

from __future__ import annotations

from services.synthesizer.llm.aimd import AimdLimit
from services.synthesizer.llm.latency import SOLO, Sample

#: the cold start's pair: two calls in service together
PAIR = 2.0


class ColdStartProbe:
    """One call alone, then two together, before the limit opens to ``initial``."""

    def __init__(self, probing: bool, initial: float, limit: AimdLimit) -> None:
        #: the cold start's probe is still under way (the limit is 1 or 2, not yet ``initial``)
        self.probing = probing
        self._initial, self._limit = initial, limit
        #: the probe's answers of calls that ran together, until both of the pair have answered
        self._pair: list[Sample] = []

    def success(self, sample: Sample | None) -> None:
        """The cold start: a call alone gives the backend's best, then two together tell whether a second
        call buys throughput. The pair is judged once both have answered, by the slower: a backend that
        serves one call at a time answers the first at solo speed while the second waits (it takes twice
        as long). Only a sample with its size informs; an answer without one (a body that is not a
        completion) leaves the probe where it is."""
        if sample is None:
            return
        limit, baseline = self._limit, self._limit.baseline
        if limit.limit < 2 or (not self._pair and sample.concurrency < SOLO):
            limit.set(2)  # the best is known (or a call ran alone again): let two run together
            return
        self._pair.append(sample)
        inflation = max(baseline.inflation(s.costs()) for s in self._pair)
        allowed = baseline.allowed(PAIR)
        if inflation > allowed:
            self.end()
            # CPU-bound or one slot: stay at 1, probe 2 ever more rarely
            limit.latency_cut(inflation, allowed)
        elif len(self._pair) >= 2:
            self.end()
            limit.set(self._initial)  # two at once cost little more than one: open up, slow start goes on

    def end(self) -> None:
        self.probing = False
        self._pair.clear()

    def ignored(self) -> None:
        """A call that failed for a reason that says nothing about load: the partner of a probe's pair
        answer that is still waiting can no longer be judged with it."""
        if self.probing:
            self._pair.clear()

    def congestion(self, concurrency: float) -> None:
        """Congestion with the pair in service: never open to the initial limit. A call that ran alone
        (the first one, or sparse work at the pair's limit) says nothing about two."""
        if self.probing and concurrency >= SOLO:
            self.end()
