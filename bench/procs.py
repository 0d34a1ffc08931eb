"""Helper processes for scenarios: the LLM simulator and the corpus server, each on a free port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from devtools.stack.proc import free_port, wait_for_port


@contextmanager
def simulator(**config: Any) -> Iterator[str]:
    """An LLM simulator process; yields its base URL (…/v1)."""
    port = free_port()
    argv = [sys.executable, "-m", "devtools.llmsim", "--port", str(port)]
    for key, value in config.items():
        argv += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, "the LLM simulator", proc)
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
        wait_for_port(port, "the corpus server", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
