"""Property over arrival timing: whatever the per-source delays and the release settings, every article
ends in exactly one final story or is left out with its reason, and the final stories are those of the
same input with no delay at all. The loop's clock fast-forwards (``looptime``), so seconds of delays
cost milliseconds and no example sleeps for real."""

from __future__ import annotations

import functools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storywire.v1 import common_pb2, synthesizer_pb2

from services.synthesizer.session import SynthesisSession
from tests.synthesizer.sessionkit import FakeWriter, Settled, config, sample_by_source, settle, timed
from tests.synthesizer.test_session import in_loop_time

BY_SOURCE = sample_by_source()
SOURCES = sorted(BY_SOURCE)
IDS = {a.id for articles in BY_SOURCE.values() for a in articles}


async def synthesize(
    by_source: dict[str, list[common_pb2.Article]], delays: dict[str, float], gap: float, *,
    release_idle: float, min_size: int, latency: float,
) -> list[synthesizer_pb2.SynthesizeResponse]:  # fmt: skip
    session = SynthesisSession(FakeWriter(latency), config(release_idle, min_size=min_size))
    return [r async for r in session.run(timed(by_source, delays, gap))]


@functools.cache
def baseline(min_size: int) -> Settled:
    """The same input, every source at once, clustered only at the end."""
    at_once = synthesize(BY_SOURCE, {}, 0.0, release_idle=0.0, min_size=min_size, latency=0.0)
    return settle(in_loop_time(at_once), IDS)


@settings(
    max_examples=30,
    deadline=timedelta(seconds=20),  # an example takes about 0.3 s alone; generous for a busy 2-core CI
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    delays=st.dictionaries(st.sampled_from(SOURCES), st.floats(0.0, 6.0), max_size=len(SOURCES)),
    gap=st.sampled_from([0.0, 0.001, 0.02, 0.2]),
    release_idle=st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.0, 2.5]),
    min_size=st.sampled_from([2, 3, 6]),
    latency=st.floats(0.0, 2.0),
)
def test_final_stories_do_not_depend_on_arrival_timing(
    delays: dict[str, float], gap: float, release_idle: float, min_size: int, latency: float
) -> None:
    responses = in_loop_time(
        synthesize(BY_SOURCE, delays, gap, release_idle=release_idle, min_size=min_size, latency=latency)
    )
    settled = settle(responses, IDS)  # every article in exactly one final story, or left out with a reason
    expected = baseline(min_size)
    assert settled.final == expected.final
    assert settled.left_out == expected.left_out
