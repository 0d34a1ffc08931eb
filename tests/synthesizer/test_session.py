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
    try:
        async for r in session.run(articles()):
            responses.append(r)
            if r.WhichOneof("item") == "story":
                first_story.set()
        baseline = [r async for r in engine.session(synthesizer_pb2.SynthesisConfig(job_id="all")).run(
            timed(by_source, {}))]  # fmt: skip
    finally:
        await engine.aclose()
    settled, expected = settle(responses, ids), settle(baseline, ids)
    assert settled.provisional, "the pause must release provisional clusters"
    assert settled.final == expected.final
    assert len(settled.final) == 14
    assert not settled.left_out
    assert engine.limiter.in_flight == 0


def test_an_event_whose_articles_arrive_3_s_apart_ends_in_one_story() -> None:
    by_source = sample_by_source()
    event = labels()
    target = sorted(set(event.values()))[0]
    split = {s: [a for a in arts if event[a.id] == target] for s, arts in by_source.items()}
    late_sources = sorted(s for s, arts in split.items() if arts)[::2]
    ids = {a.id for articles in by_source.values() for a in articles}

    async def run(delays: dict[str, float]) -> tuple[list[synthesizer_pb2.SynthesizeResponse], int]:
        late = {f"late:{s}": split[s] for s in late_sources}
        early = {s: [a for a in arts if a not in late.get(f"late:{s}", [])] for s, arts in by_source.items()}
        writer = FakeWriter(latency=0.3)
        session = SynthesisSession(writer, config(release_idle=0.5))
        return [r async for r in session.run(timed({**early, **late}, delays, gap=0.01))], writer.calls

    responses, calls = in_loop_time(run({f"late:{s}": 3.0 for s in late_sources}))
    settled = settle(responses, ids)
    baseline, baseline_calls = in_loop_time(run({}))
    expected = settle(baseline, ids)
    assert settled.final == expected.final
    holding = {k for k, members in settled.final.items() if any(event[a] == target for a in members)}
    assert len(holding) == 1, "the event's articles must end in one final story"
    (final_key,) = holding
    assert {a for a, e in event.items() if e == target} <= settled.final[final_key]
    # its story released before the late articles came was provisional, and was replaced
    replaced = [k for k, by in settled.retired.items() if by == [final_key]]
    assert replaced, f"no provisional story of {target} was retired: {settled.retired}"
    assert baseline_calls == 14
    assert not expected.provisional
    assert calls == baseline_calls + len(settled.retired)


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
