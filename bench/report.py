"""Result rows, the printed table, and the JSON file with machine information."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.goals import goals_table

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One measured variant of a scenario."""

    scenario: str
    variant: str
    wall_s: float
    items: int
    unit: str = "items"
    ideal_s: float | None = None
    #: seconds to the first result (the first story of an LLM scenario)
    first_s: float | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.items / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def efficiency(self) -> float | None:
        return self.ideal_s / self.wall_s if self.ideal_s and self.wall_s > 0 else None


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kb = int(fh.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        #: the machine is shared: its 1/5/15-minute load averages when the results were written
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'scenario':<12} {'variant':<44} {'wall s':>8} {'first s':>8} {'ideal s':>8} {'eff':>5} "
        f"{'throughput':>16}  notes"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ideal = f"{r.ideal_s:8.3f}" if r.ideal_s else f"{'-':>8}"
        eff = f"{r.efficiency:5.2f}" if r.efficiency else f"{'-':>5}"
        first = f"{r.first_s:8.3f}" if r.first_s else f"{'-':>8}"
        tput = f"{r.throughput:,.0f} {r.unit}/s"
        print(f"{r.scenario:<12} {r.variant:<44} {r.wall_s:8.3f} {first} {ideal} {eff} {tput:>16}  {r.notes}")


def write_json(rows: list[Row], quick: bool) -> Path:
    """A compact results file (one row per line, so that a diff shows what changed)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"bench-{stamp}{'-quick' if quick else ''}.json"
    head = {"when": stamp, "quick": quick, "machine": machine()}
    lines = [json.dumps({**asdict(r), "throughput": r.throughput, "efficiency": r.efficiency},
                        separators=(",", ":")) for r in rows]  # fmt: skip
    path.write_text(
        json.dumps(head, separators=(",", ":"))[:-1] + ',"rows":[\n' + ",\n".join(lines) + "\n]}\n"
    )
    return path


def markdown_table(path: Path) -> str:
    """The rows of a results file as the Markdown table docs/performance.md shows."""
    payload = json.loads(path.read_text())
    lines = [
        "| scenario | variant | wall s | first s | ideal s | efficiency | throughput | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in payload["rows"]:
        first = f"{r['first_s']:.3f}" if r.get("first_s") else "-"
        ideal = f"{r['ideal_s']:.2f}" if r["ideal_s"] else "-"
        eff = f"{r['efficiency']:.2f}" if r["efficiency"] else "-"
        notes = r["notes"].replace("|", "/")
        lines.append(
            f"| {r['scenario']} | {r['variant']} | {r['wall_s']:.3f} | {first} | {ideal} | {eff} "
            f"| {r['throughput']:,.0f} {r['unit']}/s | {notes} |"
        )
    return "\n".join(lines)


def goals_markdown(path: Path) -> str:
    """The goals of the LLM benchmarks, checked from a results file (``bench.goals``)."""
    return goals_table(json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report bench/results/FILE.json``: print the file's rows as the doc's table, then
    the goals checked from them."""
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    print(markdown_table(args.file))
    print()
    print(goals_markdown(args.file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
