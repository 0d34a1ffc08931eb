"""``make run``: the end-to-end demo on the bundled sample corpus.

Starts the local PostgreSQL and Redis, serves ``sample/`` on loopback, picks an LLM backend, starts the
three services, runs one job through the ``storywire`` CLI (progress bars, stories, timing table), and
stops everything it started.

LLM backend, in this order: ``STORYWIRE_LLM_BASE_URL`` when set (your Ollama, vLLM, llama.cpp or OpenAI;
``STORYWIRE_LLM_MODEL`` names the model); else the local llama-server with SmolLM2, built on first use
(``make llm-setup``'s code: about 6 minutes on 2 cores, once); with ``STORYWIRE_DEMO_LLM=simulator``,
storywire's OpenAI-compatible simulator instead, clearly labelled: its answers are telegraphic extracts of
the articles, so the pipeline, cache, coalescing and adaptive concurrency are real, but the prose is not
written by a language model.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from devtools import localllm
from devtools.corpus.build import ROOT as SAMPLE
from devtools.health import wait_healthy
from devtools.services import ServiceProcess
from devtools.stack import Stack
from devtools.stack.proc import StackError, free_port, wait_for_port
from runtime.client import ServiceUnavailableError

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("store", "fetcher", "synthesizer")
#: measured with `python -m devtools.storyeval` (docs/performance.md)
LOCAL_MODEL_NOTE = (
    "the grounding check accepted 14 of its 14 stories on this sample (measured); a rejected one becomes "
    "a marked extractive summary. STORYWIRE_DEMO_LLM=simulator make run uses the simulator instead."
)


def choose_llm(helpers: list[subprocess.Popen[bytes]], local_llm: list[localllm.LocalLLM]) -> dict[str, str]:
    """Settings for the LLM backend: yours, else the local model, else the labelled simulator."""
    env: dict[str, str] = {}
    if os.environ.get("STORYWIRE_LLM_BASE_URL"):
        model = os.environ.get("STORYWIRE_LLM_MODEL", "llama3.2")
        url = os.environ["STORYWIRE_LLM_BASE_URL"]
        print(f"LLM backend: {url} (model {model}), from STORYWIRE_LLM_BASE_URL")
    elif os.environ.get("STORYWIRE_DEMO_LLM", "local") == "local":
        if not localllm.installed():
            print("building the local LLM (llama-server + SmolLM2-135M) once: about 6 minutes on 2 cores,")
            print(f"  cached in {localllm.cache_dir()} ...", flush=True)
            localllm.install()
        llm = localllm.LocalLLM(ROOT / ".state" / "demo" / "llm", slots=2)
        local_llm.append(llm)
        env |= {"STORYWIRE_LLM_BASE_URL": llm.up(), "STORYWIRE_LLM_MODEL": localllm.MODEL_NAME,
                "STORYWIRE_LLM_CONCURRENCY_INITIAL": "2"}  # fmt: skip
        print(f"LLM backend: local llama-server, {localllm.MODEL_FILE}, 2 parallel slots.")
        print(
            "  Compact prompt, grounded JSON grammar (chosen from what llama-server reports); "
            + LOCAL_MODEL_NOTE
        )
    else:
        sim_port = free_port()
        sim = [
            sys.executable,
            "-m",
            "devtools.llmsim",
            "--port",
            str(sim_port),
            "--slots",
            "8",
            "--latency",
            "0.4",
        ]
        helpers.append(subprocess.Popen(sim, stdout=subprocess.DEVNULL))
        wait_for_port(sim_port, "the LLM simulator", helpers[-1])
        env |= {
            "STORYWIRE_LLM_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
            "STORYWIRE_LLM_MODEL": "simulator",
        }
        print("LLM backend: storywire's simulator (no language model configured). Its stories are extracts")
        print("  of the articles: pipeline, cache and concurrency are real, the prose is not an LLM's.")
        print("  For real stories: STORYWIRE_LLM_BASE_URL=http://127.0.0.1:11434/v1 make run  (Ollama)")
        print("  The offline model is the default when STORYWIRE_DEMO_LLM is unset (built on first use).")

    return env


def main() -> int:
    stack = Stack(ROOT / ".state" / "demo")
    helpers: list[subprocess.Popen[bytes]] = []
    local_llm: list[localllm.LocalLLM] = []
    services: list[ServiceProcess] = []
    try:
        info = stack.up()
        print(f"PostgreSQL {info.postgres_dsn}\nRedis      {info.redis_url}")
        corpus_port = free_port()
        helpers.append(
            subprocess.Popen([sys.executable, "-m", "devtools.corpus.server", "--port", str(corpus_port)])
        )
        wait_for_port(corpus_port, "the sample corpus server", helpers[-1])
        base = f"http://127.0.0.1:{corpus_port}"

        env = {**info.env(), "STORYWIRE_LOG_LEVEL": "WARNING", "STORYWIRE_LOG_FORMAT": "console",
               "STORYWIRE_FETCH_ALLOW_NETWORKS": "127.0.0.1/32"}  # fmt: skip
        env |= choose_llm(helpers, local_llm)

        ports = {name: free_port() for name in SERVICES}
        for name in SERVICES:
            env[f"STORYWIRE_{name.upper()}_ADDRESS"] = f"127.0.0.1:{ports[name]}"
        for name in SERVICES:
            services.append(ServiceProcess(name, env=env, port=ports[name], capture=False).start())

        async def healthy() -> None:
            await asyncio.gather(*(wait_healthy(s.address, s.name) for s in services))

        asyncio.run(healthy())
        print("services: " + ", ".join(f"{s.name} {s.address}" for s in services))
        urls = [base + path for path in _job_paths()]
        print(f"running a job over {len(urls)} URLs of the sample corpus (feeds and pages)\n", flush=True)
        cli_env = {**os.environ, **env}
        result = subprocess.run(
            [sys.executable, "-m", "cli", "run", "--name", "demo", *urls], env=cli_env, check=False
        )
        return result.returncode
    except (StackError, ServiceUnavailableError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for service in reversed(services):  # the synthesizer first: it depends on the other two
            service.terminate()
        for proc in helpers:
            proc.terminate()
            proc.wait(timeout=10)
        for llm in local_llm:
            llm.down()
        stack.down()


def _job_paths() -> list[str]:
    import json  # noqa: PLC0415

    paths: list[str] = json.loads((SAMPLE / "manifest.json").read_text())["job_urls"]
    return paths


if __name__ == "__main__":
    raise SystemExit(main())
