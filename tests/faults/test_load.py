"""Fifty jobs submitted at once to one deployment: every job ends DONE with one story per cluster (none
lost, none twice), and the jobs that repeat an earlier one's work get it from the LLM cache instead of
the backend (the LLM calls are counted)."""

from __future__ import annotations

import asyncio

import pytest
from storywire.v1 import common_pb2, store_pb2

from tests.e2e.conftest import check_accounting, events_until_end, job_stories, submit
from tests.faults.conftest import Baseline, Deployment, Store, cache_stats, stalled, tally
from tests.faults.record import FaultRow, record

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
JOBS = 50
#: distinct models: the first job of each needs the LLM for its clusters, the other jobs repeat its work
MODELS = 10


async def final(store: Store, job_id: str) -> common_pb2.Job:
    """The job once it reached a final state (its watch ends there)."""
    await events_until_end(store, job_id)
    return (await store.GetJob(store_pb2.GetJobRequest(job_id=job_id))).job


async def test_fifty_concurrent_jobs(deployment: Deployment, store: Store, baseline: Baseline) -> None:
    loop = asyncio.get_running_loop()
    calls = deployment.sim.stats.calls
    started = loop.time()
    submitted = await asyncio.gather(
        *(submit(store, deployment.urls(), model=f"sim-load-{n % MODELS}") for n in range(JOBS))
    )
    try:
        finals = await asyncio.wait_for(asyncio.gather(*(final(store, j.id) for j in submitted)), 240)
    except TimeoutError:
        pytest.fail(await stalled(deployment, store, [j.id for j in submitted], 240))
    seconds = loop.time() - started
    backend_calls = deployment.sim.stats.calls - calls
    stories = [await job_stories(store, job.id) for job in finals]
    for job in finals:
        await check_accounting(store, job)
    counts = [tally(baseline.cluster_keys, s) for s in stories]
    lost, duplicated = sum(c[0] for c in counts), sum(c[1] for c in counts)
    done = sum(job.state == common_pb2.JOB_STATE_DONE for job in finals)
    llm_calls = sum(job.totals.llm_calls for job in finals)
    cache_hits = sum(job.totals.cache_hits for job in finals)
    from_cache = sum(all(s.cache_hit for s in job_s) for job_s in stories)
    fallbacks = sum(s.fallback for job_s in stories for s in job_s)
    needed = MODELS * len(
        baseline.cluster_keys
    )  # one call per cluster and model, without provisional stories
    stats = await cache_stats(deployment)
    record(
        FaultRow(
            case=f"{JOBS} jobs submitted at once ({MODELS} models, {JOBS // MODELS} jobs each)",
            outcome=f"done x{done}" + (f", other x{JOBS - done}" if done < JOBS else ""),
            stories_expected=JOBS * len(baseline.cluster_keys),
            stories_stored=sum(len({s.cluster_key for s in job_s}) for job_s in stories),
            lost=lost,
            duplicated=duplicated,
            extra_llm_calls=backend_calls - needed,
            notes=f"wall time {seconds:.1f} s for all ({baseline.seconds:.2f} s for one alone); "
            f"{backend_calls} LLM calls for {needed} (cluster, model) pairs; {cache_hits} cache hits, "
            f"{from_cache} jobs wholly from the cache; {fallbacks} fallbacks; "
            f"in flight after {stats.in_flight}",
        )
    )
    assert done == JOBS, [
        (j.id, common_pb2.JobState.Name(j.state), j.error)
        for j in finals
        if j.state != common_pb2.JOB_STATE_DONE
    ]
    assert (lost, duplicated) == (0, 0)
    assert fallbacks == 0
    # the repeats come from the cache (or share an identical call in flight): at most the first job of
    # each model, plus provisional stories of an early release, reach the backend
    assert backend_calls == llm_calls
    assert backend_calls <= 2 * needed, f"{backend_calls} LLM calls for {needed} (cluster, model) pairs"
    assert cache_hits >= (JOBS - MODELS) * len(baseline.cluster_keys) // 2
    assert stats.in_flight == 0
