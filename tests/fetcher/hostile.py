"""A loopback HTTP server with well-behaved and hostile endpoints for fetcher tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from storywire.v1 import common_pb2 as E

GOOD_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Good</title>
<item><title>Bridge reopens</title><link>http://good.example/bridge?utm_source=rss#top</link>
<description>The bridge reopened after 14 weeks of &lt;b&gt;repairs&lt;/b&gt;.</description>
<pubDate>Fri, 20 Nov 2026 06:00:00 +0000</pubDate></item>
<item><title>Bridge reopens</title><link>http://good.example/bridge</link>
<description>The bridge reopened after 14 weeks of &lt;b&gt;repairs&lt;/b&gt;.</description></item>
<item><title>Old news</title><link>http://good.example/old</link><description>From long ago.</description>
<pubDate>Mon, 01 Jan 2001 00:00:00 +0000</pubDate></item>
</channel></rss>"""


def hostile_cases(base: str) -> dict[str, int]:
    """Hostile URLs of the server at ``base`` and the precise error each must get (a FetchErrorCode)."""
    return {
        f"{base}/slow": E.FETCH_ERROR_CODE_TIMEOUT,
        f"{base}/endless": E.FETCH_ERROR_CODE_TOO_LARGE,
        f"{base}/badgzip": E.FETCH_ERROR_CODE_DECODE,
        f"{base}/image": E.FETCH_ERROR_CODE_UNSUPPORTED_CONTENT,
        f"{base}/badxml": E.FETCH_ERROR_CODE_PARSE,
        f"{base}/badutf8": E.FETCH_ERROR_CODE_DECODE,
        f"{base}/loop/0": E.FETCH_ERROR_CODE_TOO_MANY_REDIRECTS,
        f"{base}/missing": E.FETCH_ERROR_CODE_HTTP_STATUS,
    }


@dataclass
class Hostile:
    connections: int = 0
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/good.xml", self.good)
        r.add_get("/slow", self.slowloris)
        r.add_get("/endless", self.endless)
        r.add_get("/badgzip", self.bad_gzip)
        r.add_get("/image", self.image)
        r.add_get("/badxml", self.bad_xml)
        r.add_get("/badutf8", self.bad_utf8)
        r.add_get("/loop/{n}", self.loop)
        r.add_get("/to-other-loopback", self.to_other_loopback)
        r.add_get("/flaky", self.flaky)
        r.add_get("/limited", self.limited)
        r.add_get("/missing", self.missing)
        r.add_get("/host/{n}", self.per_host)
        return app

    def _count(self, key: str) -> None:
        self.hits[key] = self.hits.get(key, 0) + 1

    async def good(self, _: web.Request) -> web.Response:
        return web.Response(body=GOOD_RSS, content_type="application/rss+xml")

    async def slowloris(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        for _ in range(120):
            await resp.write(b"<")
            await asyncio.sleep(0.5)
        return resp

    async def endless(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        chunk = b"<p>" + b"x" * 65536 + b"</p>"
        for _ in range(100_000):
            await resp.write(chunk)
        return resp

    async def bad_gzip(self, _: web.Request) -> web.Response:
        return web.Response(body=b"\x1f\x8b\x08\x00garbage-not-gzip" * 10,
                            headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})  # fmt: skip

    async def image(self, _: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, content_type="image/png")

    async def bad_xml(self, _: web.Request) -> web.Response:
        return web.Response(body=b"<rss><channel><item><title>broken", content_type="application/rss+xml")

    async def bad_utf8(self, _: web.Request) -> web.Response:
        return web.Response(body=b"<html><body><p>caf\xe9 \xff\xfe broken</p></body></html>",
                            headers={"Content-Type": "text/html; charset=utf-8"})  # fmt: skip

    async def loop(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        raise web.HTTPFound(f"/loop/{n + 1}")

    async def to_other_loopback(self, request: web.Request) -> web.Response:
        port = request.url.port
        raise web.HTTPFound(f"http://127.0.0.2:{port}/good.xml")

    async def flaky(self, _: web.Request) -> web.Response:
        self._count("flaky")
        if self.hits["flaky"] <= 2:
            return web.Response(status=503, text="try later")
        return web.Response(body=GOOD_RSS, content_type="application/rss+xml")

    async def limited(self, _: web.Request) -> web.Response:
        self._count("limited")
        if self.hits["limited"] == 1:
            return web.Response(status=429, headers={"Retry-After": "1"}, text="slow down")
        return web.Response(body=GOOD_RSS, content_type="application/rss+xml")

    async def missing(self, _: web.Request) -> web.Response:
        return web.Response(status=404, text="gone")

    async def per_host(self, request: web.Request) -> web.Response:
        keys = ("host", f"host {request.host}")  # all requests, and those of each Host header
        for key in keys:
            self.in_flight[key] = self.in_flight.get(key, 0) + 1
            self.max_in_flight[key] = max(self.max_in_flight.get(key, 0), self.in_flight[key])
        try:
            await asyncio.sleep(0.1)
            n = request.match_info["n"]
            html = f"<html><head><title>Page {n}</title></head><body><article><h1>Page {n}</h1>"
            html += f"<p>{'Independent reporting on harbour matters, number ' + n + '. ' * 1}" * 5 + "</p>"
            html += "</article></body></html>"
            return web.Response(text=html, content_type="text/html")
        finally:
            for key in keys:
                self.in_flight[key] -= 1


async def start(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """``app`` on a free loopback port while the block runs; yields its base URL."""
    runner, port = await start(app)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
