"""Early release on long jobs: a cluster whose event still trickles in is held back until it is settled (no
member for several of its expected gaps), so a long job does not write provisional stories only to retire
them; the first story still comes at the first pause, and every article is still accounted for."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

from storywire.v1 import common_pb2, synthesizer_pb2

from devtools.corpus.build import compose
from devtools.release_tradeoff import synthetic_feeds, trickle
from services.synthesizer.clustering import Cluster, Doc, StreamClusterer
from services.synthesizer.clustering.stream import SETTLE_GAPS
from tests.synthesizer.conftest import Sim, engine_for
from tests.synthesizer.sessionkit import settle


def event_docs() -> dict[str, list[Doc]]:
    """The sample corpus's articles by event."""
    out: dict[str, list[Doc]] = {}
    for i in compose():
        out.setdefault(i.event, []).append(Doc.of(i.path, i.title, i.text, i.path))
    return out


def test_a_cluster_that_still_grows_is_held_until_it_settles() -> None:
    by_event = event_docs()
    burst, trickle = (by_event[e] for e in sorted(by_event)[:2])
    clusterer = StreamClusterer(0.3, min_size=2)
    for d in burst[:3]:
        clusterer.add(d, at=0.0)
    for t, d in enumerate(trickle[:6]):  # one article a second, from t = 0 to 5
        clusterer.add(d, at=float(t))
    # the first release hands out one cluster even if none is settled: the first story comes early
    (first,) = clusterer.release(limit=1, now=5.5)
    assert first.docs[0] in trickle  # the biggest
    # the burst's 3 articles came 5.5 s ago; span 5 s, so their expected gap is 5 / (3 - 1) s
    assert not clusterer.settled(clusterer.backend.cluster(burst[:3], 0.3)[0], now=5.5)
    assert clusterer.release(limit=8, now=5.5) == []
    assert clusterer.held == 1
    settles_at = SETTLE_GAPS * 5.0 / 2
    assert clusterer.next_settle() == settles_at
    assert clusterer.release(limit=8, now=settles_at - 0.01) == []
    (second,) = clusterer.release(limit=8, now=settles_at + 0.01)
    assert sorted(d.id for d in second.docs) == sorted(d.id for d in burst[:3])
    assert clusterer.held == 0


def test_after_a_burst_and_a_pause_every_cluster_is_settled() -> None:
    """A slow source: everything else came at once, so the pause settles every cluster at once."""
    by_event = event_docs()
    clusterer = StreamClusterer(0.3, min_size=2)
    for docs in by_event.values():
        for d in docs[:5]:
            clusterer.add(d, at=10.0)
    released = clusterer.release(limit=None, now=10.5)
    assert len(released) == len(by_event)
    assert clusterer.held == 0
    assert clusterer.next_settle() is None


def test_a_cluster_settles_later_when_the_stream_goes_on() -> None:
    """Articles that arrive after a release widen the span: a held cluster settles later, not sooner."""
    by_event = event_docs()
    first, held, later = (by_event[e] for e in sorted(by_event)[:3])
    clusterer = StreamClusterer(0.3, min_size=2)
    for d in first[:4]:
        clusterer.add(d, at=0.0)
    for d in held[:3]:
        clusterer.add(d, at=1.0)
    assert len(clusterer.release(limit=1, now=1.5)) == 1  # the biggest (4) goes first
    before = clusterer.next_settle()
    assert before == 1.0 + SETTLE_GAPS * 1.0 / 2
    for t, d in enumerate(later[:4], start=2):
        clusterer.add(d, at=float(t))
    after = clusterer.next_settle()
    assert after is not None
    assert after > before


def test_a_later_burst_is_bounded_by_the_biggest_cluster_seen() -> None:
    """A held cluster of 2 settles late; a later burst may settle sooner. ``next_settle`` bounds a cluster
    of the articles that arrived since the last release as if it were no bigger than the biggest cluster
    seen so far (4 here), nor than their number: a burst of 3 is bounded exactly, one of 6 (bigger than
    any seen) later than it settles, but still before the held cluster."""
    by_event = event_docs()
    big, small, burst, bigger = (by_event[e] for e in sorted(by_event)[:4])
    clusterer = StreamClusterer(0.3, min_size=2)
    for d in big[:4]:
        clusterer.add(d, at=0.0)
    for d in small[:2]:
        clusterer.add(d, at=0.2)
    assert len(clusterer.release(limit=1, now=0.7)) == 1  # the biggest
    assert clusterer.held == 1
    assert clusterer.next_settle() == 0.2 + SETTLE_GAPS * 0.2  # nothing new: the held cluster
    for i, d in enumerate(burst[:3]):
        clusterer.add(d, at=1.0 + i / 100)
    span = 1.02
    small_settles = 0.2 + SETTLE_GAPS * span
    assert clusterer.next_settle() == 1.0 + SETTLE_GAPS * span / 2
    released = clusterer.release(limit=8, now=1.02 + SETTLE_GAPS * span / 2)  # the burst's settle time
    assert [sorted(d.id for d in c.docs) for c in released] == [sorted(d.id for d in burst[:3])]
    assert clusterer.next_settle() == small_settles  # nothing new since: the held cluster
    for i, d in enumerate(bigger[:6]):
        clusterer.add(d, at=5.0 + i / 100)
    span = 5.05
    bound = clusterer.next_settle()
    assert bound == 5.0 + SETTLE_GAPS * span / 3  # as if 4 articles: 6 have come
    assert 5.05 + SETTLE_GAPS * span / 5 < bound < 0.2 + SETTLE_GAPS * span
    released = clusterer.release(limit=8, now=bound)
    assert [sorted(d.id for d in c.docs) for c in released] == [sorted(d.id for d in bigger[:6])]
    assert clusterer.held == 1


async def test_a_long_job_with_a_steady_trickle_does_not_retire_its_provisional_stories(sim: Sim) -> None:
    """600 articles of 60 events arrive in 6 feeds, each feed 0.7 s after the one before (longer than the
    default release interval, so every gap is a release): every event still grows until the last feed.
    With default settings against the LLM simulator, the first story still comes before the input ends,
    and the job makes at most 1.2 LLM calls per final story (releasing whatever looked complete at each
    pause retired about half the provisional stories: 1 + 2 + 4 + 8 + 16 of them)."""
    engine = engine_for(sim.url)  # default settings: early release on
    assert engine.settings.cluster_release_idle_ms == 500
    feeds = synthetic_feeds(600, 100)
    ids = {a.id for feed in feeds for a in feed}
    input_ended = 0.0

    async def articles() -> AsyncIterator[common_pb2.Article]:
        nonlocal input_ended
        async for a in trickle(feeds, 0.7):
            yield a
        input_ended = time.perf_counter()

    session = engine.session(synthesizer_pb2.SynthesisConfig(job_id="trickle"))
    backend = session.clusterer.backend
    clusterings = 0

    class Counting:  # the real backend, counted: a release that cannot hand anything out is skipped
        name = backend.name
        default_threshold = backend.default_threshold

        def cluster(self, docs: Sequence[Doc], threshold: float) -> list[Cluster]:
            nonlocal clusterings
            clusterings += 1
            return backend.cluster(docs, threshold)

    session.clusterer.backend = Counting()
    started = time.perf_counter()
    async with engine:
        responses = [r async for r in session.run(articles())]
    settled = settle(responses, ids)
    calls = responses[-1].summary.totals.llm_calls
    print(f"\nfinal={len(settled.final)} provisional={len(settled.provisional)} "
          f"retired={len(settled.retired)} calls={calls} first story {session.first_story_s} s, "
          f"input ended {input_ended - started:.2f} s, {clusterings} clusterings")  # fmt: skip
    assert len(settled.final) == 60
    assert not settled.left_out
    assert session.first_story_s is not None
    assert started + session.first_story_s < input_ended, "the first story comes before the input ends"
    assert len(settled.retired) <= 1 + len(settled.final) // 10
    assert calls <= 1.2 * len(settled.final)
    assert clusterings <= 4, "the first release, at most two more, the final clustering (6 pauses)"
