"""``make run``: the end-to-end demo on the bundled sample.

Starts the local PostgreSQL and Redis, the three services on loopback, checks that each one is SERVING,
and stops everything again (the job itself is wired in as the pipeline lands).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from devtools.health import wait_healthy
from devtools.stack import Stack
from devtools.stack.proc import StackError, free_port
from runtime.client import ServiceUnavailableError

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("store", "fetcher", "synthesizer")


def main() -> int:
    stack = Stack(ROOT / ".state" / "demo")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        info = stack.up()
        print(f"PostgreSQL {info.postgres_dsn}\nRedis      {info.redis_url}")
        env = {
            **os.environ,
            **info.env(),
            "STORYWIRE_LOG_FORMAT": "console",
            "STORYWIRE_LOG_LEVEL": "WARNING",
        }
        addresses: dict[str, str] = {}
        for name in SERVICES:
            port = free_port()
            addresses[name] = f"127.0.0.1:{port}"
            env[f"STORYWIRE_{name.upper()}_PORT"] = str(port)
            env[f"STORYWIRE_{name.upper()}_ADDRESS"] = addresses[name]
        for name in SERVICES:
            procs.append(subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env))

        async def check_all() -> None:
            await asyncio.gather(*(wait_healthy(a, n) for n, a in addresses.items()))

        asyncio.run(check_all())
        for name, address in addresses.items():
            print(f"  {name:<12} SERVING at {address}")
        return 0
    except (StackError, ServiceUnavailableError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        stack.down()


if __name__ == "__main__":
    raise SystemExit(main())
