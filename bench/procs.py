"""Helper processes for scenarios: the LLM simulator and the corpus server, each on a free port."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.env import BenchEnv
from devtools.health import wait_healthy
from devtools.services import ServiceProcess
from devtools.stack.proc import free_port, wait_for_port


@contextmanager
def _serving(module: str, args: list[str], what: str) -> Iterator[int]:
    """``python -m module --port P *args`` on a free port P, stopped on exit; yields P once it listens."""
    port = free_port()
    argv = [sys.executable, "-m", module, "--port", str(port), *args]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, what, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def simulator(**config: Any) -> Iterator[str]:
    """An LLM simulator process; yields its base URL (…/v1)."""
    args = []
    for key, value in config.items():
        args += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    with _serving("devtools.llmsim", args, "the LLM simulator") as port:
        yield f"http://127.0.0.1:{port}/v1"


def sim_reset(base_url: str, **config: Any) -> None:
    httpx.post(base_url.removesuffix("/v1") + "/reset", json=config, timeout=10).raise_for_status()


def sim_stats(base_url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(base_url.removesuffix("/v1") + "/stats", timeout=10).json()["stats"]
    return stats


@contextmanager
def corpus_server(latency: float = 0.0, root: Path | None = None) -> Iterator[str]:
    """The corpus server process (the sample corpus, or ``root``); yields its base URL."""
    args = ["--latency", str(latency), *(["--root", str(root)] if root is not None else [])]
    with _serving("devtools.corpus.server", args, "the corpus server") as port:
        yield f"http://127.0.0.1:{port}"


def settings_note(settings: dict[str, str]) -> str:
    """What a storywire row prints about its settings: ``defaults``, or every one a scenario changed."""
    if not settings:
        return "defaults"
    return "non-default: " + ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))


async def start_services(
    env: BenchEnv, llm_url: str, **settings: str
) -> tuple[list[ServiceProcess], dict[str, str]]:
    """Store, fetcher and synthesizer as processes against the bench stack and the LLM at ``llm_url``;
    ``settings`` are extra environment variables. Returns the processes and their addresses."""
    names = ("store", "fetcher", "synthesizer")
    ports = {n: free_port() for n in names}
    service_env = {
        **env.stack.env(),
        "STORYWIRE_LLM_BASE_URL": llm_url,
        "STORYWIRE_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        "STORYWIRE_LOG_LEVEL": "WARNING",
        **{f"STORYWIRE_{n.upper()}_ADDRESS": f"127.0.0.1:{p}" for n, p in ports.items()},
        **settings,
    }  # fmt: skip
    procs = [ServiceProcess(n, env=service_env, port=ports[n]).start() for n in names]
    await asyncio.gather(*(wait_healthy(p.address, p.name) for p in procs))
    return procs, {n: f"127.0.0.1:{p}" for n, p in ports.items()}


async def restart(proc: ServiceProcess) -> ServiceProcess:
    """The same service started afresh on the same port and settings (a new process: nothing learnt,
    e.g. the synthesizer's concurrency limit back at its default)."""
    proc.terminate(15)
    fresh = ServiceProcess(proc.name, env=proc.env, port=proc.port).start()
    await wait_healthy(fresh.address, fresh.name)
    return fresh
