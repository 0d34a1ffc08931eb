"""Redis and PostgreSQL stopped mid-job and started again at once: the job ends done with every story of
the fault-free run, none twice, and the table reports what the outage cost it.

The goal (issue 15): a service back within 1 s costs a job at most 5 s more than the same job without
the fault. Each server is stopped once two stories are stored and started again as soon as it has
stopped; how long it was away is in the row's notes. The extra time is recorded and the doc reports it
against the goal; the test asserts only a bound that no busy 2-core machine reaches but that the
30-second stall of the issue (a lease left to expire) would."""

from __future__ import annotations

import asyncio

import pytest
from storywire.v1 import common_pb2

from devtools.stack import Stack
from tests.faults.conftest import Baseline, Deployment, JobWatch, Store, fault_row, run_job
from tests.faults.record import record

pytestmark = pytest.mark.integration
#: as in test_processes: the synthesis lasts several seconds, so the outage falls in its middle
SIM_SETTINGS = {"slots": 2, "latency": 0.5}
#: a job that takes this much longer than the fault-free one has stalled
STALL_BOUND_S = 25.0


@pytest.mark.parametrize("server", ["redis", "postgres"])
async def test_a_server_stopped_mid_job_and_started_again(
    deployment: Deployment, store: Store, baseline: Baseline, server: str
) -> None:
    stack = deployment.stack
    assert isinstance(stack, Stack)
    target = stack.redis if server == "redis" else stack.postgres
    away: list[float] = []

    async def fault(watch: JobWatch) -> float:
        await watch.stories(2)
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        await asyncio.to_thread(target.stop)
        await asyncio.to_thread(target.start)
        back = loop.time()
        away.append(back - stopped)
        return back

    run, recovery = await run_job(deployment, store, fault=fault)
    name = "Redis" if server == "redis" else "PostgreSQL"
    row = record(
        fault_row(
            f"{name} stopped mid-job, started again", baseline, run, recovery,
            f"away {away[0]:.1f} s (stop + start)",
        )
    )  # fmt: skip
    assert run.job.state == common_pb2.JOB_STATE_DONE, run.job.error
    assert (row.lost, row.duplicated) == (0, 0), row
    assert row.extra_s is not None
    assert row.extra_s < STALL_BOUND_S, row
