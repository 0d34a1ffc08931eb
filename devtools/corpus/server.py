"""Serve ``sample/`` on loopback with ``{{BASE}}`` replaced by the server's own address.

Options for benchmarks and tests: ``latency`` (seconds added to every response), ETag/Last-Modified
with 304 answers to conditional requests, and counters (requests, 304s, max concurrent per path prefix).
``python -m devtools.corpus.server --port 8088``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from devtools.corpus.build import ROOT

TYPES = {".xml": "application/rss+xml", ".atom": "application/atom+xml", ".rdf": "application/rdf+xml",
         ".html": "text/html; charset=utf-8", ".json": "application/json"}  # fmt: skip
LAST_MODIFIED = "Fri, 20 Nov 2026 06:00:00 GMT"


@dataclass
class ServerStats:
    requests: int = 0
    not_modified: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    paths: dict[str, int] = field(default_factory=dict)


class CorpusServer:
    def __init__(self, root: Path = ROOT, latency: float = 0.0) -> None:
        self.root = root
        self.latency = latency
        self.stats = ServerStats()
        self.base = ""

    def manifest(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.root / "manifest.json").read_text())
        return data

    def job_urls(self) -> list[str]:
        return [self.base + path for path in self.manifest()["job_urls"]]  # type: ignore[attr-defined]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        st = self.stats
        st.requests += 1
        st.paths[request.path] = st.paths.get(request.path, 0) + 1
        st.in_flight += 1
        st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            path = (self.root / request.path.lstrip("/")).resolve()
            if self.root.resolve() not in path.parents or not path.is_file():
                return web.Response(status=404, text="not found")
            body = path.read_text().replace("{{BASE}}", self.base).encode()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if request.headers.get("If-None-Match") == etag:
                st.not_modified += 1
                return web.Response(status=304, headers={"ETag": etag})
            headers = {
                "ETag": etag,
                "Last-Modified": LAST_MODIFIED,
                "Content-Type": TYPES.get(path.suffix, "text/plain"),
            }
            return web.Response(body=body, headers=headers)
        finally:
            st.in_flight -= 1

    async def start(self, port: int = 0) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return runner


async def _serve(port: int, latency: float, root: Path) -> None:
    server = CorpusServer(root, latency=latency)
    await server.start(port)
    print(f"sample corpus at {server.base}/ ({len(server.job_urls())} job URLs)", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m devtools.corpus.server", description=__doc__)
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="directory to serve (default: sample/)")
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.latency, args.root))
