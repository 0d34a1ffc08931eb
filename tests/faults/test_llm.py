"""LLM faults on a whole deployment: 20 % and 50 % of the calls to the backend fail (5xx, 429 with
Retry-After, hangs that end in a gateway timeout). Every job ends DONE with one story per cluster, each
written by the LLM or an honest extractive fallback that says why, and the LLM permits all come back.

That the adaptive limit climbs back to the backend's capacity once such a burst ends is shown on the
engine alone, where the limit is observable after every call: tests/synthesizer/test_writer.py::
test_the_limit_recovers_after_a_fault_burst_even_when_answers_are_rejected.
"""

from __future__ import annotations

from collections import Counter

import pytest
from storywire.v1 import common_pb2

from tests.faults.conftest import Baseline, Deployment, Store, cache_stats, fault_row, run_job, simulator
from tests.faults.record import record

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
#: how long the simulator holds a hung request before it answers 504, like a gateway that gives up
HANG_SECONDS = 2.0


def fault_mix(rate: float) -> dict[str, float]:
    """``rate`` of the calls fail: a third each 500, 429 (Retry-After: 1) and a hang ending in 504."""
    return {
        "rate_500": rate / 3,
        "rate_429": rate / 3,
        "rate_timeout": rate / 3,
        "hang_seconds": HANG_SECONDS,
    }


@pytest.mark.parametrize("rate", [0.2, 0.5], ids=["20pct", "50pct"])
async def test_llm_faults_every_cluster_gets_a_story(
    deployment: Deployment, store: Store, baseline: Baseline, rate: float
) -> None:
    with simulator(deployment, **fault_mix(rate), seed=int(rate * 100)) as sim:
        run, _ = await run_job(deployment, store)
        faults = dict(sim.stats.faults)
    stats = await cache_stats(deployment)
    clean, _ = await run_job(deployment, store)  # the burst is over
    reasons = Counter(s.fallback_reason.split(":", 1)[0] for s in run.fallbacks)
    why = f" {dict(reasons)}" if reasons else ""
    written = len(run.stories) - len(run.fallbacks)
    row = record(
        fault_row(
            f"LLM faults {rate:.0%} (500, 429 Retry-After 1 s, {HANG_SECONDS:.0f} s hang then 504)",
            baseline,
            run,
            notes=f"{run.seconds:.2f} s vs {baseline.seconds:.2f} s without faults; faults on "
            f"{sum(faults.values())} of {run.llm_calls} calls {faults}; {written} stories LLM-written, "
            f"{len(run.fallbacks)} extractive fallbacks{why}; "
            f"limit after {stats.concurrency_limit}, in flight {stats.in_flight}; the next job without "
            f"faults {clean.seconds:.2f} s",
        )
    )
    assert run.job.state == common_pb2.JOB_STATE_DONE, run.job.error
    assert (row.lost, row.duplicated) == (0, 0), row
    assert run.cluster_keys == baseline.cluster_keys
    assert sum(faults.values()) > 0
    assert run.llm_calls > baseline.llm_calls, "the failed calls were retried"
    for story in run.fallbacks:  # honest: the extractive summary says it is one, and why
        assert story.model == "extractive"
        assert story.fallback_reason.startswith("LLM failed"), story.fallback_reason
    assert written >= len(run.stories) // 2, "retries turn most faults into LLM-written stories"
    assert stats.in_flight == 0, "every LLM permit came back"
    assert clean.job.state == common_pb2.JOB_STATE_DONE
    assert not clean.fallbacks
    assert clean.seconds < 3 * baseline.seconds + 3, "a clean job after the burst runs at full speed"
