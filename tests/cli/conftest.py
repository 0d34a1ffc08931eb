"""The real ``storywire`` command against a real deployment (the e2e one: PostgreSQL, Redis, the three
services, the sample corpus and the LLM simulator), and a feed that answers only when a test says so."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from tests.e2e.conftest import Deployment, deployment, store

__all__ = ["Deployment", "deployment", "store"]

STORYWIRE = Path(sys.executable).parent / "storywire"  # the console script `make setup` installs
RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Held</title>
<item><title>A held article</title><link>http://held.example/one</link>
<description>An article served only when the test lets it go.</description></item>
</channel></rss>"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}"


@dataclass
class Cli:
    """Runs ``storywire ARGS`` with the deployment's environment (store and synthesizer addresses)."""

    env: dict[str, str]
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            str(STORYWIRE), *args, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    async def run(self, *args: str, timeout: float = 120.0) -> Result:
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def cli(deployment: Deployment) -> AsyncIterator[Cli]:
    runner = Cli({**os.environ, **deployment.env, "COLUMNS": "200"})
    yield runner
    for proc in runner.procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()


class Gate:
    """``/held.xml`` answers (a one-article feed) only after :meth:`release`; ``requested`` is set when
    the fetcher has asked for it, so a test knows its job is mid-fetch."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.released = asyncio.Event()
        self.url = ""

    async def handle(self, _: web.Request) -> web.Response:
        self.requested.set()
        await self.released.wait()
        return web.Response(body=RSS, content_type="application/rss+xml")

    def release(self) -> None:
        self.released.set()


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    held = Gate()
    app = web.Application()
    app.router.add_get("/held.xml", held.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    held.url = f"http://127.0.0.1:{runner.addresses[0][1]}/held.xml"
    yield held
    held.release()
    await runner.cleanup()


async def read_until(stream: asyncio.StreamReader | None, text: str, timeout: float = 60.0) -> str:
    """Lines of ``stream`` up to the first that contains ``text``."""
    assert stream is not None
    seen: list[str] = []

    async def scan() -> str:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"{text!r} never came; output was:\n{''.join(seen)}")
            seen.append(line)
            if text in line:
                return "".join(seen)

    return await asyncio.wait_for(scan(), timeout)
