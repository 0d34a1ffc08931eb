"""The fetcher over real gRPC against loopback fixture servers: samples, hostile cases, SSRF, 304, limits."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aiohttp import web
from storywire.v1 import common_pb2, fetcher_pb2, fetcher_pb2_grpc

from devtools.corpus.server import CorpusServer
from runtime.server import start_server
from runtime.settings import load_settings
from runtime.stubs import FetcherStub as Fetcher
from services.fetcher.http import FetchFailedError, HttpFetcher, HttpLimits
from services.fetcher.safety import AddressGuard, IPAddress, parse_allowlist
from services.fetcher.service import FetcherService
from services.fetcher.settings import FetcherSettings
from tests.fetcher.hostile import Hostile, hostile_cases, serve

pytestmark = pytest.mark.integration
E = common_pb2


@contextlib.asynccontextmanager
async def serving(settings: FetcherSettings) -> AsyncIterator[Fetcher]:
    """A fetcher with ``settings`` on a free loopback port while the block runs: a stub to it."""
    handle = await start_server(FetcherService(settings), settings, 0)
    try:
        async with grpc.aio.insecure_channel(handle.address) as channel:
            yield fetcher_pb2_grpc.FetcherServiceStub(channel)
    finally:
        await handle.stop()


def fetcher_for(allow: str, **overrides: Any) -> contextlib.AbstractAsyncContextManager[Fetcher]:
    """A fetcher that may reach ``allow``, with short limits (3 s per URL, 1 MB bodies)."""
    settings = load_settings(
        FetcherSettings, fetcher_port=0, fetch_allow_networks=allow, log_format="console",
        fetch_timeout_seconds=3, fetch_max_body_bytes=1_000_000, **overrides,
    )  # fmt: skip
    return serving(settings)


@pytest.fixture
async def loopback_fetcher() -> AsyncIterator[Fetcher]:
    async with fetcher_for("127.0.0.1/32") as stub:
        yield stub


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    async with serve(server.app()) as server.base:
        yield server


@contextlib.asynccontextmanager
async def counting_listener(host: str, port: int) -> AsyncIterator[list[int]]:
    """A TCP listener on host:port that accepts, counts and closes connections; yields the count list."""
    accepted: list[int] = []
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen()
    listener.setblocking(False)
    loop = asyncio.get_running_loop()

    async def count() -> None:
        while True:
            conn, _ = await loop.sock_accept(listener)
            accepted.append(1)
            conn.close()

    counter = asyncio.create_task(count())
    try:
        yield accepted
    finally:
        counter.cancel()
        listener.close()


async def fetch(stub: Fetcher, urls: list[str], **options: Any) -> list[fetcher_pb2.FetchResponse]:
    request = fetcher_pb2.FetchRequest(urls=urls, options=fetcher_pb2.FetchOptions(**options))
    return [r async for r in stub.Fetch(request)]


def split(responses: list[fetcher_pb2.FetchResponse]) -> tuple[list[Any], dict[str, Any], Any]:
    articles = [r.article for r in responses if r.WhichOneof("item") == "article"]
    errors = {r.error.url: r.error for r in responses if r.WhichOneof("item") == "error"}
    assert responses[-1].WhichOneof("item") == "summary"
    return articles, errors, responses[-1].summary


async def test_sample_corpus_feeds_and_pages(loopback_fetcher: Fetcher) -> None:
    corpus = CorpusServer()
    runner = await corpus.start()
    try:
        articles, errors, summary = split(await fetch(loopback_fetcher, corpus.job_urls()))
    finally:
        await runner.cleanup()
    assert errors == {}
    assert summary.articles == len(articles) == corpus.manifest()["articles"]
    assert summary.urls_ok == summary.urls_total == len(corpus.job_urls())
    # every format parsed: RSS 2.0, RSS 1.0 (RDF), Atom and HTML pages
    sources = {a.source_url.rsplit(".", 1)[-1] for a in articles}
    assert sources == {"xml", "rdf", "atom", "html"}
    assert all(a.title and a.text and a.content_hash and a.id for a in articles)
    page = next(a for a in articles if a.source_url.endswith(".html"))
    assert "Copyright" not in page.text  # boilerplate removed by the extractor
    assert page.published_at.seconds > 0


async def test_batches_carry_the_same_articles(loopback_fetcher: Fetcher) -> None:
    corpus = CorpusServer()
    runner = await corpus.start()
    try:
        single, _, _ = split(await fetch(loopback_fetcher, corpus.job_urls()))
        responses = await fetch(loopback_fetcher, corpus.job_urls(), batch_size=4)
    finally:
        await runner.cleanup()
    batches = [r.batch for r in responses if r.WhichOneof("item") == "batch"]
    assert not any(r.WhichOneof("item") == "article" for r in responses)
    assert all(1 <= len(b.articles) <= 4 for b in batches)
    assert any(len(b.articles) == 4 for b in batches)
    batched = [a for b in batches for a in b.articles]
    # the same articles (by URL: a page that times out on a busy machine leaves its feed's teaser, a
    # different text and so a different id, in one of the two fetches)
    assert sorted(a.canonical_url for a in batched) == sorted(a.canonical_url for a in single)
    assert responses[-1].summary.articles == len(batched)


async def test_hostile_cases_fail_alone_and_precisely(loopback_fetcher: Fetcher, hostile: Hostile) -> None:
    b = hostile.base
    cases = hostile_cases(b)
    articles, errors, summary = split(await fetch(loopback_fetcher, [f"{b}/good.xml", *cases]))
    got = {url.split("/", 3)[3].split("/")[0]: e.code for url, e in errors.items()}
    expected = {url.split("/", 3)[3].split("/")[0]: code for url, code in cases.items()}
    assert got == expected, {u: (e.code, e.detail) for u, e in errors.items()}
    assert errors[f"{b}/missing"].http_status == 404
    # the good feed still streamed: tracking params and fragment stripped, duplicate and old entry counted
    assert [a.canonical_url for a in articles] == ["http://good.example/bridge", "http://good.example/old"]
    assert articles[0].text == "The bridge reopened after 14 weeks of repairs."
    assert summary.duplicates == 1
    assert summary.urls_failed == len(cases)


async def test_time_window_skips_and_counts(loopback_fetcher: Fetcher, hostile: Hostile) -> None:
    articles, _, summary = split(
        await fetch(loopback_fetcher, [f"{hostile.base}/good.xml"], time_window_hours=24 * 365)
    )
    assert [a.canonical_url for a in articles] == ["http://good.example/bridge"]
    assert summary.skipped_out_of_window == 1


async def test_retries_503_and_429_with_retry_after(loopback_fetcher: Fetcher, hostile: Hostile) -> None:
    articles, errors, _ = split(
        await fetch(loopback_fetcher, [f"{hostile.base}/flaky", f"{hostile.base}/limited"])
    )
    assert errors == {}
    assert hostile.hits == {"flaky": 3, "limited": 2}
    assert len(articles) == 2  # the same two entries from both URLs are duplicates of each other


#: URLs a fetcher with no allow-list (the default) refuses without connecting, and the error each gets
SSRF_CASES = [
    ("http://10.1.2.3/feed.xml", E.FETCH_ERROR_CODE_BLOCKED_ADDRESS),
    ("http://169.254.169.254/latest/meta-data/", E.FETCH_ERROR_CODE_BLOCKED_ADDRESS),
    ("http://127.0.0.1:9/feed.xml", E.FETCH_ERROR_CODE_BLOCKED_ADDRESS),
    ("http://[::1]:9/feed.xml", E.FETCH_ERROR_CODE_BLOCKED_ADDRESS),
    ("http://localhost:9/feed.xml", E.FETCH_ERROR_CODE_BLOCKED_ADDRESS),
    ("file:///etc/passwd", E.FETCH_ERROR_CODE_INVALID_URL),
    ("gopher://example.org/", E.FETCH_ERROR_CODE_INVALID_URL),
]


@pytest.mark.parametrize(("url", "code"), SSRF_CASES)
async def test_ssrf_refused_without_allowlist(url: str, code: int) -> None:
    async with fetcher_for("") as stub:
        started = asyncio.get_running_loop().time()
        _, errors, _ = split(await fetch(stub, [url]))
        assert asyncio.get_running_loop().time() - started < 2  # refused, not attempted and timed out
    assert errors[url].code == code, errors[url].detail


async def test_redirect_to_unlisted_loopback_is_refused_before_connecting(
    loopback_fetcher: Fetcher, hostile: Hostile
) -> None:
    # a listener on 127.0.0.2 counts connections: the refused redirect target must never be contacted
    port = int(hostile.base.rsplit(":", 1)[1])
    async with counting_listener("127.0.0.2", port) as accepted:
        _, errors, _ = split(await fetch(loopback_fetcher, [f"{hostile.base}/to-other-loopback"]))
    error = next(iter(errors.values()))
    assert error.code == E.FETCH_ERROR_CODE_BLOCKED_ADDRESS
    # reported under the submitted URL, with the target in the detail
    assert error.url == f"{hostile.base}/to-other-loopback"
    assert error.detail.startswith(f"redirected to http://127.0.0.2:{port}/good.xml: ")
    assert accepted == []


async def test_unchanged_feed_costs_a_304_and_still_yields_articles(loopback_fetcher: Fetcher) -> None:
    corpus = CorpusServer()
    runner = await corpus.start()
    feed = corpus.job_urls()[0]
    try:
        first, _, s1 = split(await fetch(loopback_fetcher, [feed]))
        second, _, s2 = split(await fetch(loopback_fetcher, [feed]))
    finally:
        await runner.cleanup()
    assert (s1.urls_not_modified, s2.urls_not_modified) == (0, 1)
    assert corpus.stats.not_modified == 1
    assert s2.bytes == 0
    assert [a.id for a in second] == [a.id for a in first]


async def test_per_host_limit_is_observed(loopback_fetcher: Fetcher, hostile: Hostile) -> None:
    urls = [f"{hostile.base}/host/{n}" for n in range(12)]
    articles, errors, _ = split(await fetch(loopback_fetcher, urls, per_host_concurrency=3))
    assert errors == {}
    assert len(articles) == 12
    assert hostile.max_in_flight["host"] == 3


async def test_bad_request_is_invalid_argument(loopback_fetcher: Fetcher) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fetch(loopback_fetcher, [])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fetch(loopback_fetcher, ["http://127.0.0.1/"], per_host_concurrency=1000)
    assert info.value.details() == "options.per_host_concurrency: 1000 is outside [0, 256]"


class RebindingGuard(AddressGuard):
    """Answers for the made-up host ``rebind.test``: 127.0.0.1 (allowlisted) for the first lookup, then
    127.0.0.2 (not allowlisted), as a DNS server that rebinds a name would."""

    def __init__(self) -> None:
        super().__init__(parse_allowlist(["127.0.0.1/32"]))
        self.lookups = 0

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        if host != "rebind.test":
            return await super().resolve(host, port)
        self.lookups += 1
        return [ipaddress.ip_address("127.0.0.1" if self.lookups == 1 else "127.0.0.2")]


async def test_dns_rebinding_between_check_and_connect_is_refused(hostile: Hostile) -> None:
    port = int(hostile.base.rsplit(":", 1)[1])
    guard = RebindingGuard()
    http = HttpFetcher(guard, HttpLimits(retries=0), "storywire-test")
    try:
        async with counting_listener("127.0.0.2", port) as accepted:
            with pytest.raises(FetchFailedError) as info:
                await http.fetch(f"http://rebind.test:{port}/good.xml", per_host=4, total_timeout=3)
    finally:
        await http.aclose()
    assert guard.lookups == 2  # the check, then the connection's own lookup
    assert info.value.code == "blocked_address"
    assert "127.0.0.2" in str(info.value)
    assert accepted == []


async def test_connections_go_to_the_address_the_guard_checked(hostile: Hostile) -> None:
    """``rebind.test`` is in no DNS: the fetch only works because the connection uses the guard's own
    (checked) answer, 127.0.0.1, for both lookups."""
    port = int(hostile.base.rsplit(":", 1)[1])

    class Steady(RebindingGuard):
        async def resolve(self, host: str, port: int) -> list[IPAddress]:
            self.lookups += 1
            return [ipaddress.ip_address("127.0.0.1")]

    http = HttpFetcher(Steady(), HttpLimits(retries=0), "storywire-test")
    try:
        fetched = await http.fetch(f"http://rebind.test:{port}/good.xml", per_host=4, total_timeout=3)
    finally:
        await http.aclose()
    assert fetched.status == 200
    assert b"<rss" in fetched.body


async def test_the_per_host_table_keeps_each_limit_and_forgets_idle_hosts(hostile: Hostile) -> None:
    """Three host names (all 127.0.0.1), six pages each, two at a time per host: each host gets its two,
    and once they are done the table holds no host (it does not grow with every host ever fetched)."""
    port = int(hostile.base.rsplit(":", 1)[1])

    class TestNames(AddressGuard):
        async def resolve(self, host: str, port: int) -> list[IPAddress]:
            return [ipaddress.ip_address("127.0.0.1")]

    http = HttpFetcher(TestNames(parse_allowlist(["127.0.0.1/32"])), HttpLimits(retries=0), "storywire-test")
    hosts = [f"h{n}.test:{port}" for n in range(3)]
    try:
        for _ in range(2):  # a second round on hosts the table forgot keeps the limits too
            fetched = await asyncio.gather(
                *(
                    http.fetch(f"http://{hosts[n % 3]}/host/{n}", per_host=2, total_timeout=30)
                    for n in range(18)
                )
            )
            assert all(f.status == 200 for f in fetched)
            assert len(http.hosts) == 0
    finally:
        await http.aclose()
    for host in hosts:
        assert hostile.max_in_flight[f"host {host}"] == 2, hostile.max_in_flight


async def test_an_unexpected_parser_crash_fails_the_url_visibly(
    loopback_fetcher: Fetcher, hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(fetched: Any) -> Any:
        raise RuntimeError("parser bug")

    monkeypatch.setattr("services.fetcher.run.parse", crash)
    url = f"{hostile.base}/good.xml"
    articles, errors, summary = split(await fetch(loopback_fetcher, [url]))
    assert articles == []
    assert errors[url].code == E.FETCH_ERROR_CODE_UNSPECIFIED
    assert errors[url].detail == "internal error: RuntimeError: parser bug"
    assert summary.urls_failed == summary.urls_total == 1


async def test_a_slow_host_queue_does_not_hold_other_hosts_back() -> None:
    """More requests queued on one slow host than the global limit: another host is still served at once
    (a request waits for its host's slot before it takes a global permit)."""
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="slow")

    async def fast(_: web.Request) -> web.Response:
        return web.Response(text="fast")

    slow_app, fast_app = web.Application(), web.Application()
    slow_app.router.add_get("/{n}", slow)
    fast_app.router.add_get("/", fast)
    http = HttpFetcher(AddressGuard(parse_allowlist(["127.0.0.1/32"])), HttpLimits(max_connections=4), "t")
    async with serve(slow_app) as slow_base, serve(fast_app) as fast_base:
        try:
            queued = [
                asyncio.create_task(http.fetch(f"{slow_base}/{n}", per_host=2, total_timeout=30))
                for n in range(10)
            ]
            await asyncio.sleep(0.2)  # the slow host's two slots taken, eight requests queued behind them
            got = await asyncio.wait_for(http.fetch(f"{fast_base}/", per_host=2, total_timeout=30), 5)
            assert got.body == b"fast"
            assert not any(t.done() for t in queued)
            release.set()
            assert all(r.body == b"slow" for r in await asyncio.gather(*queued))
        finally:
            release.set()
            await http.aclose()
