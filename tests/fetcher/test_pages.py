"""Full text from teaser feeds, over real gRPC against a loopback site: pages are read by default, not
when the feed carries the article or the job says OFF, and page fetches keep the SSRF guard, the size
cap, the per-host limit and conditional GET; every failure falls back to the teaser and is counted."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from storywire.v1 import common_pb2

from runtime.stubs import FetcherStub as Fetcher
from tests.fetcher.hostile import serve
from tests.fetcher.test_fetch import fetch, fetcher_for, split

pytestmark = pytest.mark.integration

PARAGRAPHS = [
    "The Harnmouth ferry resumed its crossings on Monday after a three-week repair of its ramp.",
    "Operators said 1,200 passengers used the first two sailings, twice the usual number.",
    "The council will review the timetable in December, its transport officer said.",
]
TEASER = PARAGRAPHS[0]


def page_html(n: str) -> str:
    body = "".join(f"<p>{p} (page {n})</p>" for p in PARAGRAPHS)
    return (
        f"<!doctype html><html><head><title>Ferry {n}</title></head><body>"
        f"<nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article><h1>Ferry {n}</h1>{body}</article>"
        f"<footer>Copyright Harnmouth Herald</footer></body></html>"
    )


def rss(items: list[tuple[str, str]], full: bool = False) -> bytes:
    """An RSS 2.0 feed; each item (title, link) carries the teaser, and with ``full`` also the whole
    article in content:encoded."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>',
    ]
    for title, link in items:
        out.append(f"<item><title>{title}</title><link>{link}</link><description>{TEASER}</description>")
        if full:
            whole = "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in PARAGRAPHS)
            out.append(f"<content:encoded>{whole}</content:encoded>")
        out.append("</item>")
    out.append("</channel></rss>")
    return "\n".join(out).encode()


@dataclass
class Site:
    base: str = ""
    hits: dict[str, int] = field(default_factory=dict)
    not_modified: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    feeds: dict[str, bytes] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feed/{name}", self.feed)
        app.router.add_get("/page/{n}", self.page)
        app.router.add_get("/big", self.big)
        app.router.add_get("/gone", self.gone)
        return app

    async def feed(self, request: web.Request) -> web.Response:
        return web.Response(body=self.feeds[request.match_info["name"]], content_type="application/rss+xml")

    async def page(self, request: web.Request) -> web.Response:
        n = request.match_info["n"]
        self.hits[n] = self.hits.get(n, 0) + 1
        text = page_html(n)
        etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            self.not_modified += 1
            return web.Response(status=304, headers={"ETag": etag})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.05)  # long enough for concurrent requests to overlap
        finally:
            self.in_flight -= 1
        return web.Response(text=text, content_type="text/html", headers={"ETag": etag})

    async def big(self, _: web.Request) -> web.Response:
        self.hits["big"] = self.hits.get("big", 0) + 1
        filler = "<p>" + "word " * 400_000 + "</p>"  # 2 MB, over the test fetcher's 1 MB cap
        return web.Response(text=page_html("big").replace("</article>", filler + "</article>"),
                            content_type="text/html")  # fmt: skip

    async def gone(self, _: web.Request) -> web.Response:
        return web.Response(status=404, text="gone")


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    s = Site()
    async with serve(s.app()) as s.base:
        yield s


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with fetcher_for("127.0.0.1/32") as stub:  # 1 MB body cap, 3 s per URL
        yield stub


async def test_teasers_get_their_pages_text_by_default(fetcher: Fetcher, site: Site) -> None:
    site.feeds["t"] = rss([(f"Ferry {n}", f"{site.base}/page/{n}") for n in range(3)])
    articles, errors, summary = split(await fetch(fetcher, [f"{site.base}/feed/t"]))
    assert errors == {}
    assert len(articles) == 3
    for a in articles:
        assert all(p in a.text for p in PARAGRAPHS)  # the whole article, not the first paragraph
        assert "Copyright" not in a.text
        assert "Home" not in a.text
        assert a.title.startswith("Ferry")  # the feed's title
    assert (summary.pages_fetched, summary.pages_failed) == (3, 0)
    assert site.hits == {"0": 1, "1": 1, "2": 1}


async def test_full_content_in_the_feed_and_off_read_no_page(fetcher: Fetcher, site: Site) -> None:
    site.feeds["full"] = rss([("Ferry a", f"{site.base}/page/a")], full=True)
    site.feeds["t"] = rss([("Ferry b", f"{site.base}/page/b")])
    full, _, s_full = split(await fetch(fetcher, [f"{site.base}/feed/full"]))
    off, _, s_off = split(await fetch(fetcher, [f"{site.base}/feed/t"], full_text=common_pb2.FULL_TEXT_OFF))
    assert all(p in full[0].text for p in PARAGRAPHS)
    assert off[0].text == TEASER
    assert site.hits == {}
    assert s_full.pages_fetched == s_off.pages_fetched == s_full.pages_failed == s_off.pages_failed == 0


async def test_failed_pages_fall_back_to_the_teaser_and_are_counted(fetcher: Fetcher, site: Site) -> None:
    port = site.base.rsplit(":", 1)[1]
    site.feeds["t"] = rss([
        ("Ok", f"{site.base}/page/ok"),
        ("Too big", f"{site.base}/big"),  # over the size cap
        ("Gone", f"{site.base}/gone"),  # 404
        ("Elsewhere", f"http://127.0.0.2:{port}/page/x"),  # a loopback address not allowlisted
    ])  # fmt: skip
    articles, errors, summary = split(await fetch(fetcher, [f"{site.base}/feed/t"]))
    assert errors == {}  # the feed itself is fine
    text = {a.title: a.text for a in articles}
    assert PARAGRAPHS[2] in text["Ok"]
    assert text["Too big"] == text["Gone"] == text["Elsewhere"] == TEASER
    assert (summary.pages_fetched, summary.pages_failed) == (1, 3)
    assert site.hits["big"] == 1
    assert "x" not in site.hits  # the SSRF guard refused the page before any request


async def test_page_fetches_keep_the_per_host_limit(fetcher: Fetcher, site: Site) -> None:
    site.feeds["t"] = rss([(f"Ferry {n}", f"{site.base}/page/{n}") for n in range(10)])
    articles, _, summary = split(await fetch(fetcher, [f"{site.base}/feed/t"], per_host_concurrency=2))
    assert summary.pages_fetched == len(articles) == 10
    assert site.max_in_flight == 2


async def test_unchanged_pages_cost_a_304(fetcher: Fetcher, site: Site) -> None:
    site.feeds["a"] = rss([("Ferry 1", f"{site.base}/page/1")])
    site.feeds["b"] = rss([("Ferry 1 again", f"{site.base}/page/1")])  # same page, another feed
    first, _, s1 = split(await fetch(fetcher, [f"{site.base}/feed/a"]))
    second, _, s2 = split(await fetch(fetcher, [f"{site.base}/feed/b"]))
    assert (s1.pages_not_modified, s2.pages_not_modified) == (0, 1)
    assert site.not_modified == 1
    assert second[0].text == first[0].text
    assert PARAGRAPHS[2] in second[0].text
