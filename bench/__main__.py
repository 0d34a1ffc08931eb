"""``python -m bench [SCENARIO ...] [--quick]``: start the stack, run scenarios, print and save results."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

from bench.env import BenchEnv
from bench.report import Row, print_table, write_json
from devtools.stack import Stack
from runtime.logging import configure_logging

SCENARIOS = ["seed", "adaptive", "fetch", "store", "transport", "scale", "clustering", "httpclient"]


async def run_all(names: list[str], env: BenchEnv) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        module = importlib.import_module(f"bench.scenarios.{name}")
        print(f"running {name}...", file=sys.stderr, flush=True)
        rows += await module.run(env)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], help="default: all")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI keeps the harness alive)")
    args = parser.parse_args(argv)
    configure_logging("bench", "WARNING", "console")
    state = Path(tempfile.mkdtemp(prefix="storywire-bench-"))
    state.chmod(0o755)
    stack = Stack(state)
    try:
        env = BenchEnv(stack=stack.up(), quick=args.quick)
        rows = asyncio.run(run_all(args.scenarios or SCENARIOS, env))
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)
    print_table(rows)
    print(f"\nresults written to {write_json(rows, args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
