"""Run a storywire service as a subprocess (``python -m services.<name>``) on a free loopback port."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import grpc
from pydantic import SecretStr

from devtools.stack.proc import free_port
from runtime.client import ClientSecurity, open_channel

ROOT = Path(__file__).resolve().parent.parent
#: the service token of every service this process starts (make run, the tests, the benchmarks): the
#: store's worker API refuses callers without one, so local stacks get a fresh random one per run
DEV_SERVICE_TOKEN = os.environ.get("STORYWIRE_SERVICE_TOKEN") or secrets.token_urlsafe(24)


class ServiceProcess:
    """A service started as ``python -m services.<name>`` on a free loopback port.

    With ``capture`` (the default) its output goes to a temporary log file, never to a pipe: a pipe
    that nobody drains fills up and then blocks the service's event loop on its next log line.
    """

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
            "STORYWIRE_SERVICE_TOKEN": DEV_SERVICE_TOKEN,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        if self.capture:
            self._log = tempfile.TemporaryFile(prefix=f"storywire-{self.name}-")  # noqa: SIM115 - closed in output()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT if self.capture else None,
        )
        return self

    def output(self) -> str:
        """Everything the service has logged so far (empty without capture)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> tuple[int, str]:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        return code, self.output()

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the graceful exit (SIGKILL after ``timeout``); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def dev_security() -> ClientSecurity:
    """How local tools and tests reach the services started here: plaintext loopback, service token."""
    return ClientSecurity(token=SecretStr(DEV_SERVICE_TOKEN))


def dev_channel(address: str) -> grpc.aio.Channel:
    """A channel to a local service that carries the service token (for tools that act as workers)."""
    return open_channel(address, security=dev_security())
