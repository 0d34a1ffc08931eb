"""Run a storywire service as a subprocess (``python -m services.<name>``) on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from devtools.stack.proc import free_port

ROOT = Path(__file__).resolve().parent.parent


class ServiceProcess:
    """A service started as ``python -m services.<name>`` on a free loopback port."""

    def __init__(
        self, name: str, env: Mapping[str, str] | None = None, port: int | None = None, capture: bool = True
    ) -> None:
        self.capture = capture
        self.name = name
        self.port = port or free_port()
        self.env = {
            **os.environ,
            f"STORYWIRE_{name.upper()}_PORT": str(self.port),
            "STORYWIRE_LOG_FORMAT": "console",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen[str] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE if self.capture else None,
            stderr=subprocess.STDOUT if self.capture else None,
            text=True,
        )
        return self

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> tuple[int, str]:
        assert self.proc is not None
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the graceful exit; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)
