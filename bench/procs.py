"""Helper processes for scenarios: the LLM simulator and the corpus server, each on a free port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from devtools.stack.proc import free_port, port_open


def _wait(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


@contextmanager
def simulator(**config: Any) -> Iterator[str]:
    """An LLM simulator process; yields its base URL (…/v1)."""
    port = free_port()
    argv = [sys.executable, "-m", "devtools.llmsim", "--port", str(port)]
    for key, value in config.items():
        argv += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, proc, "the LLM simulator")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sim_reset(base_url: str, **config: Any) -> None:
    httpx.post(base_url.removesuffix("/v1") + "/reset", json=config, timeout=10).raise_for_status()


def sim_stats(base_url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(base_url.removesuffix("/v1") + "/stats", timeout=10).json()["stats"]
    return stats


@contextmanager
def corpus_server(latency: float = 0.0) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "devtools.corpus.server", "--port", str(port), "--latency", str(latency)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, proc, "the corpus server")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
