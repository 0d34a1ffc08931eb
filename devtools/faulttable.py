"""The fault table of docs/reliability.md, from a committed results file.

``make faults`` runs ``tests/faults`` with ``STORYWIRE_FAULT_RECORD`` set, then
``python -m devtools.faulttable collect RECORD`` writes ``bench/results/faults-<UTC stamp>.json`` (the
rows plus machine information) and ``python -m devtools.faulttable write FILE`` replaces the generated
block of docs/reliability.md with the table made from FILE. A test checks that the doc's table matches
the file it cites.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from bench.report import RESULTS_DIR, machine

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
BLOCK = re.compile(
    r"<!-- fault-table:begin (?P<file>\S+) -->\n(?P<table>.*?)\n<!-- fault-table:end -->", re.S
)


def collect(record: Path) -> Path:
    """The JSON lines of a ``make faults`` run as a compact results file (one row per line)."""
    rows = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"faults-{stamp}.json"
    head = {"when": stamp, "machine": machine()}
    lines = [json.dumps(r, separators=(",", ":")) for r in rows]
    body = ',"rows":[\n' + ",\n".join(lines) + "\n]}\n"
    path.write_text(json.dumps(head, separators=(",", ":"))[:-1] + body)
    return path


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown_table(path: Path) -> str:
    """The rows of a fault results file as the Markdown table docs/reliability.md shows."""
    rows = json.loads(path.read_text())["rows"]
    lines = [
        "| case | outcome | stories | lost | duplicated | extra LLM calls | recovery s | extra s | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        stories = f"{r['stories_stored']}/{r['stories_expected']}" if r["stories_expected"] else "-"
        lines.append(
            f"| {r['case']} | {r['outcome'].replace('|', '/')} | {stories} | {r['lost']} | {r['duplicated']} "
            f"| {_num(r['extra_llm_calls'], 'd')} | {_num(r['recovery_s'], '.2f')} "
            f"| {_num(r['extra_s'], '.2f')} "
            f"| {r['notes'].replace('|', '/')} |"
        )
    return "\n".join(lines)


def write(path: Path, doc: Path = DOC) -> None:
    """Replace the doc's generated block with the table of ``path`` (cited relative to the repository)."""
    cited = path.resolve().relative_to(ROOT)
    block = f"<!-- fault-table:begin {cited} -->\n{markdown_table(path)}\n<!-- fault-table:end -->"
    text = doc.read_text()
    if not BLOCK.search(text):
        raise SystemExit(f"{doc} has no fault-table block to replace")
    doc.write_text(BLOCK.sub(lambda _: block, text, count=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.faulttable", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("collect", help="JSON lines of a run -> bench/results/faults-STAMP.json").add_argument(
        "record", type=Path
    )
    sub.add_parser("write", help="the table of FILE into docs/reliability.md").add_argument("file", type=Path)
    sub.add_parser("show", help="print the table of FILE").add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.command == "collect":
        print(collect(args.record).relative_to(ROOT))
    elif args.command == "write":
        write(args.file)
    else:
        print(markdown_table(args.file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
