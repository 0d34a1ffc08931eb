"""The benchmark harness runs end to end in quick mode, so it cannot rot between full runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def test_bench_quick_prints_a_table_and_writes_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "direct (COPY + upsert)" in proc.stdout
    path = Path(proc.stdout.strip().splitlines()[-1].split("results written to ")[1])
    try:
        payload = json.loads(path.read_text())
        assert payload["quick"] is True
        assert payload["machine"]["cpus"] >= 1
        variants = {r["variant"] for r in payload["rows"]}
        assert {
            "executemany upsert (simple)",
            "direct (COPY + upsert)",
            "gRPC PutArticles stream",
        } <= variants
        assert all(r["throughput"] > 0 for r in payload["rows"])
        seed = [r["variant"] for r in payload["rows"] if r["scenario"] == "seed"]
        for profile in ("queue", "cpu", "ratelimit", "sloppy"):  # every profile, with the best peers
            mine = [v for v in seed if v.startswith(profile + ":")]
            assert any("oracle: gather + Semaphore(K=" in v for v in mine), mine
            assert any("unbounded gather" in v for v in mine), mine
            assert any("storywire synthesizer (stream)" in v for v in mine), mine
        llm = [r for r in payload["rows"] if r["scenario"] in {"seed", "adaptive"}]
        streamed = [r for r in llm if "warm" not in r["variant"] and "end to end" not in r["variant"]]
        assert all(r["first_s"] for r in streamed)
        # equal work: in every profile each peer wrote as many stories as storywire's stream
        groups: dict[str, set[int]] = {}
        for r in streamed:
            groups.setdefault(f"{r['scenario']} {r['variant'].split(':', 1)[0]}", set()).add(r["items"])
        assert all(len(items) == 1 for items in groups.values()), groups
        assert all("clustering" in r["notes"] for r in streamed)  # every row shows its clustering time
        # a storywire row runs with the shipped settings, and says so
        assert all(r["notes"].startswith("defaults") for r in llm if "storywire" in r["variant"])
        assert "asyncio.gather of all URLs, then parse (seed-004)" in variants
        pipeline = [r for r in payload["rows"] if r["scenario"] in {"transport", "scale"}]
        assert len(pipeline) == 3  # transport, and scale at two sizes
        for r in pipeline:
            result = r["extra"]["result"]
            assert result["state"] == "JOB_STATE_DONE"
            assert result["articles"] == r["items"] > 0
            assert set(result["peak_rss_mib"]) == {"store", "fetcher", "synthesizer"}
            assert all(v > 0 for v in result["cpu_s"].values())
    finally:
        path.unlink(missing_ok=True)
