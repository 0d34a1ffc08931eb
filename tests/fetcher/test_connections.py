"""The fetcher's per-request costs that a big job multiplies: error answers (a teaser's missing page, a
redirect, a 503) keep their connection for the next request, and a request imports nothing (httpcore
looks for sniffio on every lock and event; without it installed, each look is a failed import)."""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import pytest
from aiohttp import web

from services.fetcher.http import DRAIN_BYTES, DRAIN_SECONDS, FetchFailedError, HttpFetcher, HttpLimits
from services.fetcher.safety import AddressGuard, parse_allowlist
from services.fetcher.settings import FetcherSettings
from tests.fetcher.hostile import serve
from tests.fetcher.test_fetch import fetch, fetcher_for, split
from tests.fetcher.test_pages import TEASER, rss

pytestmark = pytest.mark.integration


@dataclass
class Site:
    """Pages that are missing (404 with a small body), moved (302 to a missing one), too big or too slow
    to be worth reading as errors, and a feed of teasers linking to missing and moved pages. Each
    request's client address is recorded: distinct addresses are distinct connections."""

    base: str = ""
    peers: list[object] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/feed.xml", self.feed)
        r.add_get("/missing/{n}", self.missing)
        r.add_get("/moved/{n}", self.moved)
        r.add_get("/ok/{n}", self.ok)
        r.add_get("/unavailable", self.unavailable)
        r.add_get("/big-error", self.big_error)
        r.add_get("/slow-error", self.slow_error)
        app.middlewares.append(self.record)
        return app

    @web.middleware
    async def record(self, request: web.Request, handler: object) -> web.StreamResponse:
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername"))
        return await handler(request)  # type: ignore[operator,no-any-return]

    @property
    def connections(self) -> int:
        return len(set(self.peers))

    async def feed(self, _: web.Request) -> web.Response:
        items = [(f"Ferry {n}", f"{self.base}/{'moved' if n % 2 else 'missing'}/{n}") for n in range(40)]
        return web.Response(body=rss(items), content_type="application/rss+xml")

    async def missing(self, _: web.Request) -> web.Response:
        return web.Response(status=404, text="<html><body><p>No such page.</p></body></html>")

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/missing/{request.match_info['n']}")

    async def ok(self, _: web.Request) -> web.Response:
        return web.Response(body=b"<rss/>", content_type="application/rss+xml")

    async def unavailable(self, _: web.Request) -> web.Response:
        return web.Response(status=503, text="try later")

    async def big_error(self, _: web.Request) -> web.Response:
        return web.Response(status=404, body=b"x" * (DRAIN_BYTES * 4))

    async def slow_error(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=404)
        await resp.prepare(request)
        for _ in range(60):
            await resp.write(b"x")
            await asyncio.sleep(0.5)
        return resp


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    server = Site()
    async with serve(server.app()) as server.base:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[HttpFetcher]:
    fetcher = HttpFetcher(AddressGuard(parse_allowlist(["127.0.0.1/32"])), HttpLimits(), "test")
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


async def status_of(http: HttpFetcher, url: str, timeout: float = 20.0) -> tuple[str, int]:
    """The error code and HTTP status a URL fails with (the test's URLs all fail)."""
    with pytest.raises(FetchFailedError) as failed:
        await http.fetch(url, 8, timeout)
    return failed.value.code, failed.value.http_status


async def test_missing_and_moved_pages_reuse_their_connections(site: Site) -> None:
    """A teaser feed whose 40 pages are all missing (half of them behind a redirect): each page fails
    alone and the teaser stays, over no more connections than the per-host limit allows at once."""
    async with fetcher_for("127.0.0.1/32") as stub:
        articles, errors, summary = split(await fetch(stub, [f"{site.base}/feed.xml"]))
    assert errors == {}
    assert summary.pages_failed == 40
    assert len(articles) == 40
    assert all(a.text == TEASER for a in articles)
    assert len(site.peers) == 1 + 40 + 20  # the feed, every page, every redirect
    assert site.connections <= FetcherSettings().fetch_per_host_concurrency


async def test_error_answers_one_after_another_share_one_connection(site: Site, http: HttpFetcher) -> None:
    for n in range(5):
        assert await status_of(http, f"{site.base}/missing/{n}") == ("http_status", 404)
        assert await status_of(http, f"{site.base}/moved/{n}") == ("http_status", 404)
    assert await status_of(http, f"{site.base}/unavailable") == ("http_status", 503)  # after its retries
    assert len(site.peers) == 5 * 3 + 3
    assert site.connections == 1


async def test_an_error_body_too_big_or_too_slow_to_read_still_reports_its_status(
    site: Site, http: HttpFetcher
) -> None:
    assert await status_of(http, f"{site.base}/big-error") == ("http_status", 404)
    # given up after DRAIN_SECONDS: the URL's own deadline, much later, is not what it fails with
    slow = await status_of(http, f"{site.base}/slow-error", timeout=DRAIN_SECONDS * 15)
    assert slow == ("http_status", 404)


class _ImportRecorder(importlib.abc.MetaPathFinder):
    """Records every module the import system is asked to find (a module already imported is not)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.names.append(fullname)
        return None


async def test_requests_import_nothing(site: Site, http: HttpFetcher) -> None:
    """Once the first requests have imported what they use, no request searches the import path (a
    failed import is not remembered: httpcore's look for sniffio costs a search each time without it)."""
    await http.fetch(f"{site.base}/ok/0", 8, 20)
    await status_of(http, f"{site.base}/missing/0")
    recorder = _ImportRecorder()
    sys.meta_path.insert(0, recorder)
    try:
        for n in range(1, 6):
            await http.fetch(f"{site.base}/ok/{n}", 8, 20)
            await status_of(http, f"{site.base}/missing/{n}")
        await asyncio.gather(*(http.fetch(f"{site.base}/ok/{n}", 8, 20) for n in range(20)))
    finally:
        sys.meta_path.remove(recorder)
    assert recorder.names == []
