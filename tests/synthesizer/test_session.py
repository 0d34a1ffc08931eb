"""The synthesis session over timed input: the release timer never ends the input, early clusters are
provisional, the final stories are those of all the articles clustered at once, and every article is
accounted for (in one final story, or left out with its reason)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import looptime
import pytest
from storywire.v1 import common_pb2, synthesizer_pb2

from services.synthesizer.clustering.stream import StreamClusterer
from services.synthesizer.session import SynthesisSession
from tests.synthesizer.conftest import Sim, engine_for
from tests.synthesizer.sessionkit import FakeWriter, config, labels, sample_by_source, settle, timed

T = TypeVar("T")


def in_loop_time(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on an event loop whose clock fast-forwards over idle waits (``looptime``): a 3 s
    pause at the real 500 ms release interval costs milliseconds."""
    loop = looptime.new_event_loop(start=0.0)  # fast-forwarding from the start
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, 600))
    finally:
        loop.close()


async def test_a_slow_source_is_read_to_its_end_with_the_default_release(sim: Sim) -> None:
    """One feed answers only after the first story is out: the pause (far longer than the default release
    interval) releases provisional clusters, and the input is still read to its end."""
    engine = engine_for(sim.url)  # default settings: early release on
    assert engine.settings.cluster_release_idle_ms > 0
    by_source = sample_by_source()
    ids = {a.id for articles in by_source.values() for a in articles}
    slow = "valmora-courier"
    first_story = asyncio.Event()

    async def articles() -> AsyncIterator[common_pb2.Article]:
        for source, batch in sorted(by_source.items()):
            if source != slow:
                for a in batch:
                    yield a
        await asyncio.wait_for(first_story.wait(), 60)  # the slow source answers after the first story
        for a in by_source[slow]:
            yield a

    session = engine.session(synthesizer_pb2.SynthesisConfig(job_id="slow"))
    responses = []
    async with engine:
        async for r in session.run(articles()):
            responses.append(r)
            if r.WhichOneof("item") == "story":
                first_story.set()
        baseline = [r async for r in engine.session(synthesizer_pb2.SynthesisConfig(job_id="all")).run(
            timed(by_source, {}))]  # fmt: skip
    settled, expected = settle(responses, ids), settle(baseline, ids)
    assert settled.provisional, "the pause must release provisional clusters"
    assert settled.final == expected.final
    assert len(settled.final) == 14
    assert not settled.left_out
    assert engine.limiter.in_flight == 0


def split_event() -> tuple[str, dict[str, list[common_pb2.Article]], dict[str, list[common_pb2.Article]]]:
    """The sample's first event cut in two: its articles from every other source (``late:<source>``),
    and every other article (by source)."""
    by_source, event = sample_by_source(), labels()
    target = sorted(set(event.values()))[0]
    split = {s: [a for a in arts if event[a.id] == target] for s, arts in by_source.items()}
    late_sources = sorted(s for s, arts in split.items() if arts)[::2]
    late = {f"late:{s}": split[s] for s in late_sources}
    rest = {s: [a for a in arts if a not in late.get(f"late:{s}", [])] for s, arts in by_source.items()}
    return target, rest, late


async def run_timed(
    by_source: dict[str, list[common_pb2.Article]], delays: dict[str, float]
) -> tuple[list[synthesizer_pb2.SynthesizeResponse], int]:
    writer = FakeWriter(latency=0.3)
    session = SynthesisSession(writer, config(release_idle=0.5))
    return [r async for r in session.run(timed(by_source, delays, gap=0.01))], writer.calls


def test_an_event_whose_articles_arrive_3_s_apart_ends_in_one_story() -> None:
    target, rest, late = split_event()
    ids = {a.id for articles in [*rest.values(), *late.values()] for a in articles}
    responses, calls = in_loop_time(run_timed({**rest, **late}, dict.fromkeys(late, 3.0)))
    settled = settle(responses, ids)
    baseline, baseline_calls = in_loop_time(run_timed({**rest, **late}, {}))
    expected = settle(baseline, ids)
    assert settled.final == expected.final
    holding = {k for k, members in settled.final.items() if any(labels()[a] == target for a in members)}
    assert len(holding) == 1, "the event's articles must end in one final story"
    assert {a for a, e in labels().items() if e == target} <= settled.final[holding.pop()]
    assert settled.provisional, "the pause must release provisional clusters"
    assert calls == baseline_calls + len(settled.retired)


def test_a_provisional_story_whose_cluster_grows_is_replaced() -> None:
    """Only half of one event arrives at first: its cluster is released, then its other half comes
    3 s later, and the final story of the whole event replaces the provisional one."""
    target, rest, late = split_event()
    early = {f"early:{s}": [a for a in arts if labels()[a.id] == target] for s, arts in rest.items()}
    others = {s: [a for a in arts if labels()[a.id] != target] for s, arts in rest.items()}
    by_source = {**early, **others, **late}
    ids = {a.id for articles in by_source.values() for a in articles}
    responses, calls = in_loop_time(run_timed(by_source, dict.fromkeys([*others, *late], 3.0)))
    settled = settle(responses, ids)
    (final_key,) = {k for k, members in settled.final.items() if any(labels()[a] == target for a in members)}
    assert [k for k, by in settled.retired.items() if by == [final_key]], settled.retired
    assert calls == 14 + len(settled.retired)


def test_early_release_hands_out_one_cluster_first_and_holds_the_rest() -> None:
    """One source of five 1.2 s late: every event still grows when it comes. The first quiet moment
    releases one cluster (the first story, before the late source), the next release waits twice as
    long, by which time the late source has come: one provisional story retired, not one per event."""
    by_source = sample_by_source()
    ids = {a.id for articles in by_source.values() for a in articles}
    responses, calls = in_loop_time(run_timed(by_source, {"valmora-courier": 1.2}))
    settled = settle(responses, ids)
    first = responses[settled.first_story_at].story
    assert first.cluster_key in settled.provisional, "the first story comes before the late source"
    assert len(settled.provisional) == 1
    assert len(settled.retired) == 1
    assert calls == 14 + 1


@pytest.mark.parametrize("release_idle", [0.0, 0.5])
def test_articles_of_clusters_below_the_minimum_are_left_out_with_the_reason(release_idle: float) -> None:
    by_source = sample_by_source()
    ids = {a.id for articles in by_source.values() for a in articles}

    async def run() -> list[synthesizer_pb2.SynthesizeResponse]:
        session = SynthesisSession(FakeWriter(0.1), config(release_idle, min_size=12))  # events have 11
        return [r async for r in session.run(timed(by_source, {"ostland-post": 2.0}, gap=0.01))]

    settled = settle(in_loop_time(run()), ids)
    assert settled.final == {}
    assert settled.left_out == ids


def test_a_failing_input_fails_the_stream_after_a_release() -> None:
    by_source = sample_by_source()

    async def broken() -> AsyncIterator[common_pb2.Article]:
        async for a in timed(by_source, {}):
            yield a
        await asyncio.sleep(2)  # a release happens during this pause
        raise ValueError("the input broke")

    async def run() -> None:
        session = SynthesisSession(FakeWriter(0.1), config(0.5))
        with pytest.raises(ValueError, match="the input broke"):
            _ = [r async for r in session.run(broken())]

    in_loop_time(run())


def articles_by_event() -> dict[str, list[common_pb2.Article]]:
    """The sample's articles by labelled event, each event's in id order."""
    by_event: dict[str, list[common_pb2.Article]] = {}
    event = labels()
    for article in sorted((a for arts in sample_by_source().values() for a in arts), key=lambda a: a.id):
        by_event.setdefault(event[article.id], []).append(article)
    return by_event


async def scheduled(
    schedule: list[tuple[float, common_pb2.Article]], delayed: bool = True
) -> AsyncIterator[common_pb2.Article]:
    """The articles in the order of their times, each at its time after the first (``delayed``) or all
    at once."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for at, article in sorted(schedule, key=lambda item: item[0]):
        if delayed and (wait := start + at - loop.time()) > 0:
            await asyncio.sleep(wait)
        yield article


def test_a_later_burst_is_not_kept_waiting_by_a_small_held_cluster() -> None:
    """The first pause releases one cluster (4 articles) and holds a small one (2 articles, 1 s apart:
    it settles late, after the input has ended). A burst of another event comes at 2 s and settles long
    before the input ends at 10 s: its provisional story must not wait for the held cluster (it came only
    at the end), and the final stories stay those of the same articles without delays."""
    by_event = articles_by_event()
    first, held, burst, late = (by_event[e] for e in sorted(by_event)[:4])
    schedule = [
        *zip([0.0, 0.3, 0.6, 1.0], first[:4], strict=True),
        *zip([0.0, 1.0], held[:2], strict=True),
        *((2.0 + i / 100, a) for i, a in enumerate(burst[:5])),
        *((10.0, a) for a in late[:2]),
    ]
    ids = {a.id for _, a in schedule}

    async def run(delayed: bool) -> list[synthesizer_pb2.SynthesizeResponse]:
        session = SynthesisSession(FakeWriter(0.1), config(release_idle=0.5))  # the default interval
        return [r async for r in session.run(scheduled(schedule, delayed))]

    settled, expected = settle(in_loop_time(run(True)), ids), settle(in_loop_time(run(False)), ids)
    assert settled.final == expected.final
    by_members = {members: key for key, members in settled.final.items()}
    first_key, held_key, burst_key = (
        by_members.get(frozenset(a.id for a in docs)) for docs in (first[:4], held[:2], burst[:5])
    )
    assert None not in (first_key, held_key, burst_key), "each event's articles are one final story"
    assert first_key in settled.provisional, "the first pause releases the biggest cluster"
    assert held_key not in settled.provisional, "the small cluster settles only after the input ends"
    assert burst_key in settled.provisional, "the burst's story comes before the input ends"


def test_a_burst_after_a_skipped_release_is_not_kept_waiting() -> None:
    """As above, but one article of the burst's event comes alone at 2 s, so the pause after it skips a
    release (next_settle: only the held cluster, fewer new articles than min_size); the rest of the
    burst comes at 3 s and must be looked at again, not wait for the held cluster's settle time."""
    by_event = articles_by_event()
    first, held, burst, late = (by_event[e] for e in sorted(by_event)[:4])
    schedule = [
        *zip([0.0, 0.3, 0.6, 1.0], first[:4], strict=True),
        *zip([0.0, 1.0], held[:2], strict=True),
        (2.0, burst[0]),
        *((3.0 + i / 100, a) for i, a in enumerate(burst[1:5])),
        *((10.0, a) for a in late[:2]),
    ]
    ids = {a.id for _, a in schedule}

    async def run(delayed: bool) -> list[synthesizer_pb2.SynthesizeResponse]:
        session = SynthesisSession(FakeWriter(0.1), config(release_idle=0.5))
        return [r async for r in session.run(scheduled(schedule, delayed))]

    settled, expected = settle(in_loop_time(run(True)), ids), settle(in_loop_time(run(False)), ids)
    assert settled.final == expected.final
    by_members = {members: key for key, members in settled.final.items()}
    burst_key = by_members.get(frozenset(a.id for a in burst[:5]))
    assert burst_key is not None
    assert burst_key in settled.provisional, "the burst's story comes before the input ends"


def _held_only(self: StreamClusterer) -> float | None:
    """The skip rule before the bound for new articles: only the held clusters' settle times."""
    return min((self._settles_at(last, size) for last, size in self._held), default=None)


def provisional_times(held_only: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """When the held event's and the burst's provisional clusters come, by the session's clock: a held
    cluster of 3 (0 to 0.5 s) settles late, a burst of 4 comes at 2 s, more articles at 12 s."""
    if held_only:
        monkeypatch.setattr(StreamClusterer, "next_settle", _held_only)
    by_event = articles_by_event()
    events = sorted(by_event, key=lambda e: (-len(by_event[e]), e))
    first, held, burst, late = (by_event[e] for e in events[:4])
    schedule = [
        *zip([0.0, 0.3, 0.6, 1.0], first[:4], strict=True),
        *zip([0.0, 0.25, 0.5], held[:3], strict=True),
        *((2.0 + i / 100, a) for i, a in enumerate(burst[:4])),
        *((12.0, a) for a in late[:2]),
    ]
    names = {frozenset(a.id for a in held[:3]): "held", frozenset(a.id for a in burst[:4]): "burst"}
    seen: dict[str, float] = {}

    async def run() -> None:
        loop = asyncio.get_running_loop()
        session = SynthesisSession(FakeWriter(0.0), config(release_idle=0.5))
        async for r in session.run(scheduled(schedule)):
            name = names.get(frozenset(r.cluster.article_ids))
            if r.WhichOneof("item") == "cluster" and r.cluster.provisional and name:
                seen[name] = loop.time()

    in_loop_time(run())
    return seen


def test_a_release_the_new_articles_bound_asks_too_early_costs_no_doubling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the held clusters' rule alone both come at the held cluster's settle time (6.59 s). The
    bound for new articles asks for a release at 6.06 s, before the burst settled: it hands out nothing
    and does not double the quiet time, so the burst comes when it settles (6.09 s). That release of
    the burst doubles the quiet time (the ramp that keeps a long pause to a few releases), so the held
    cluster comes one quiet period (0.5 s, the input's last arrival reset it) after its settle time."""
    new = provisional_times(False, monkeypatch)
    old = provisional_times(True, monkeypatch)
    assert set(new) == set(old) == {"held", "burst"}, (new, old)
    assert new["burst"] < old["burst"] - 0.25, (new, old)
    assert new["held"] <= old["held"] + 0.5 + 1e-6, (new, old)


def test_a_long_pause_with_many_held_clusters_costs_a_few_releases() -> None:
    """The sample's 14 events, 3 articles each, one after another, then a long pause: the held clusters
    settle one after another 1.2 s apart, and the releases during the pause double their quiet time
    (1, 2, 4... s) instead of clustering everything open at each settle time."""
    by_event = articles_by_event()
    # one article every 0.4 s (quieter than the 0.5 s interval only at the end), event after event
    schedule = [
        (0.4 * (3 * i + j), article)
        for i, name in enumerate(sorted(by_event))
        for j, article in enumerate(by_event[name][:3])
    ]
    last = max(at for at, _ in schedule)
    schedule.append((last + 300.0, by_event[sorted(by_event)[0]][3]))
    releases: list[float] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        session = SynthesisSession(FakeWriter(0.0), config(release_idle=0.5))
        real = session.clusterer.release

        def counted(limit: int | None = None, now: float = 0.0) -> Any:
            releases.append(loop.time())
            return real(limit, now)

        session.clusterer.release = counted  # type: ignore[method-assign]
        _ = [r async for r in session.run(scheduled(schedule))]

    in_loop_time(run())
    during_pause = [t for t in releases if t > last]
    # with the ramp: 50.0, 52.4, 56.4, 64.4, 80.4 s; at each settle time it was 13 releases
    assert len(during_pause) <= 6, [round(t, 2) for t in releases]
