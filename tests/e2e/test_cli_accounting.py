"""The CLI shows a job's accounting: in the timing table and in --json."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment, Store, events_until_end, submit

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def cli(deployment: Deployment, *args: str) -> str:
    argv = [sys.executable, "-m", "cli", *args, "--store", deployment.env["STORYWIRE_STORE_ADDRESS"]]
    done = await asyncio.to_thread(
        subprocess.run, argv, cwd=ROOT, env={**os.environ, "COLUMNS": "250"}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


async def test_the_timing_table_and_json_show_the_accounting(deployment: Deployment, store: Store) -> None:
    job = await submit(store, deployment.urls(), model="sim-cli-accounting")
    await asyncio.wait_for(events_until_end(store, job.id), 120)
    total = deployment.corpus.manifest()["articles"]
    table = await cli(deployment, "watch", job.id)
    flat = " ".join(table.split())  # the caption wraps
    # an early release may have written provisional stories that the final clusters retired
    retired = r"(?:; (\d+) provisional stor(?:y|ies) retired)?"
    found_in = r"accounting: (\d+) entries found = (\d+) in (\d+) stories"
    shape = rf"{found_in} \+ (\d+) left out \((.*?)\){retired}; adds up"
    line = re.search(shape, flat)
    assert line is not None, table[-3000:]
    found, in_stories, stories, left = (int(line.group(i)) for i in range(1, 5))
    assert (found, stories) == (total, 14)
    assert found == in_stories + left
    assert "cluster too small" in line.group(5)
    retired_stories = int(line.group(6) or 0)
    printed = await cli(deployment, "watch", job.id, "--json")
    assert re.search(rf'"entriesFound": "?{total}"?', printed), printed[:3000]
    assert '"balanced": true' in printed
    assert re.search(rf'"retiredStories": "?{retired_stories}\b', printed), printed[:3000]
