"""The figures in docs/performance.md come from committed results files: every table generated from one
matches what ``python -m bench.report FILE`` prints for it today. And the peers the benchmarks compare
storywire with behave as described (the oracle honours Retry-After; every answer arrives)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.llmrun import ideal
from bench.peers import oracle
from bench.peers.common import Work, cluster_articles, default_plan
from bench.procs import settings_note
from bench.report import goals_markdown, markdown_table
from bench.synthevents import event_articles
from devtools.llmsim import profile_config, start_simulator

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BLOCK = re.compile(
    r"<!-- bench-(?P<kind>table|goals):begin (?P<file>\S+) [^>]*-->\n"
    r"(?P<table>.*?)\n<!-- bench-(?P=kind):end -->",
    re.S,
)
MAKERS = {"table": markdown_table, "goals": goals_markdown}


def test_every_table_in_the_doc_matches_its_committed_results_file() -> None:
    blocks = list(BLOCK.finditer(DOC.read_text()))
    assert {b["kind"] for b in blocks} == {"table", "goals"}, "docs/performance.md lacks a generated table"
    for block in blocks:
        path = ROOT / block["file"]
        assert path.is_file(), f"{block['file']} is cited but not in the repository"
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", block["file"]], cwd=ROOT, capture_output=True, check=False
        )
        assert tracked.returncode == 0, f"{block['file']} is not committed"
        assert block["table"] == MAKERS[block["kind"]](path), (
            f"the {block['kind']} of {block['file']} are stale"
        )


def test_bench_report_prints_the_table() -> None:
    path = ROOT / BLOCK.search(DOC.read_text())["file"]  # type: ignore[index]
    out = subprocess.run(
        [sys.executable, "-m", "bench.report", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == markdown_table(path) + "\n\n" + goals_markdown(path)


async def test_oracle_peer_honours_retry_after_on_a_rate_limited_backend() -> None:
    sim, runner, url = await start_simulator(profile_config("ratelimit", window_seconds=0.5))
    try:
        articles = event_articles(9, "retry-after")  # 9 events of 2 articles: 9 stories
        run = await oracle.run(url, Work(articles, "sim", default_plan()), None)  # all at once: 6 fit
        assert len(run.stories) == 9
        assert run.rejected_429 == sim.stats.rate_limited >= 3
        _, last = ideal(cluster_articles(articles), "ratelimit", window_seconds=0.5)
        assert max(run.done_s) >= 0.95 * last  # the last ones waited for the next window
    finally:
        await runner.cleanup()


def test_a_storywire_row_names_every_setting_a_scenario_changed() -> None:
    assert settings_note({}) == "defaults"
    note = settings_note({"STORYWIRE_LLM_MAX_ATTEMPTS": "20", "STORYWIRE_LLM_MAX_WORKERS": "3"})
    assert note == "non-default: STORYWIRE_LLM_MAX_ATTEMPTS=20, STORYWIRE_LLM_MAX_WORKERS=3"


def test_a_goal_over_unequal_work_is_not_a_verdict() -> None:
    """storywire's wall against the oracle's says nothing when the two did not write the same number of
    stories (its clustering merged some of the scenario's clusters): no "met" for it."""
    from bench.goals import goal_rows

    def row(variant: str, wall: float, items: int) -> dict[str, object]:
        return {"scenario": "adaptive", "variant": f"K=4: {variant}", "wall_s": wall, "items": items,
                "unit": "stories", "efficiency": 1.0, "extra": {}}  # fmt: skip

    def goals(stories: int) -> list[str]:
        rows = [row("oracle: gather + Semaphore(K=4)", 5.2, 32), row("storywire default", 4.9, stories)]
        weak = row("plain gather + Semaphore(3)", 7.0, 32)
        weak["efficiency"] = 0.7
        return [measured for _, _, measured in goal_rows([*rows, weak])]

    assert [m.endswith(": met") for m in goals(32)] == [True, True]
    for measured in goals(28):
        assert "not comparable" in measured
        assert not measured.endswith(": met")
