"""One Fetch call: every URL concurrently, articles streamed in arrival order, then a summary."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from urllib.parse import urlsplit

from google.protobuf.duration_pb2 import Duration
from opentelemetry import trace
from storywire.v1 import common_pb2, fetcher_pb2

from runtime.ids import article_id, content_hash
from runtime.logging import get_logger
from services.fetcher.conditional import ConditionalCache, Remembered
from services.fetcher.http import FetchFailedError, HttpFetcher
from services.fetcher.pages import PageReader
from services.fetcher.parse import Entry, parse
from services.fetcher.urls import canonicalize

tracer = trace.get_tracer("storywire.fetcher")
log = get_logger(__name__)
CODES: dict[str, common_pb2.FetchErrorCode.ValueType] = {
    name.removeprefix("FETCH_ERROR_CODE_").lower(): value for name, value in common_pb2.FetchErrorCode.items()
}


@dataclass(frozen=True)
class RunOptions:
    time_window_hours: float
    max_articles: int
    per_host: int
    timeout: float
    full_text: bool
    batch_size: int = 0  # articles per `batch` message (0 = one `article` message each)
    heartbeat: float = 0.0  # seconds without a message before a `heartbeat` one (0 = never)


class FetchRun:
    def __init__(self, http: HttpFetcher, memory: ConditionalCache, options: RunOptions) -> None:
        self.http = http
        self.memory = memory
        self.options = options
        self.summary = fetcher_pb2.FetchSummary()
        self._seen_urls: set[str] = set()
        self._seen_hashes: set[str] = set()
        self._started = dt.datetime.now(dt.UTC)
        self._out: asyncio.Queue[fetcher_pb2.FetchResponse | None] = asyncio.Queue()

    async def run(self, urls: list[str]) -> AsyncGenerator[fetcher_pb2.FetchResponse, None]:
        started = time.perf_counter()
        unique = list(dict.fromkeys(urls))
        self.summary.urls_total = len(urls)
        self.summary.duplicates += len(urls) - len(unique)
        remaining = len(unique)

        async def one(url: str) -> None:
            nonlocal remaining
            try:
                await self._fetch_url(url)
            finally:
                remaining -= 1
                if remaining == 0:
                    self._out.put_nowait(None)  # after every item of every URL

        tasks = [asyncio.create_task(one(u)) for u in unique]
        try:
            while (item := await self._next()) is not None:
                yield item
        finally:
            for task in tasks:
                task.cancel()
        elapsed = Duration()
        elapsed.FromNanoseconds(int((time.perf_counter() - started) * 1e9))
        self.summary.elapsed.CopyFrom(elapsed)
        yield fetcher_pb2.FetchResponse(summary=self.summary)

    async def _next(self) -> fetcher_pb2.FetchResponse | None:
        """The next message; a heartbeat when nothing came for ``heartbeat`` seconds (Queue.get is safe
        to cancel: no item is lost)."""
        if self.options.heartbeat <= 0:
            return await self._out.get()
        try:
            return await asyncio.wait_for(self._out.get(), self.options.heartbeat)
        except TimeoutError:
            return fetcher_pb2.FetchResponse(heartbeat=True)

    async def _fetch_url(self, url: str) -> None:
        with tracer.start_as_current_span("fetch.url") as span:
            span.set_attribute("url.full", url[:500])
            span.set_attribute("server.address", urlsplit(url).hostname or "")
            try:
                try:
                    entries, not_modified, size, status = await self._entries(url)
                except (FetchFailedError, asyncio.CancelledError):
                    raise
                except Exception as unexpected:  # a parser crash or a bug: the URL fails, visibly
                    log.exception("unexpected error while fetching", url=url)
                    detail = f"internal error: {type(unexpected).__name__}: {unexpected}"
                    raise FetchFailedError("internal", detail, url) from None
            except FetchFailedError as exc:
                span.set_attribute("storywire.fetch.error", exc.code)
                span.set_attribute("http.response.status_code", exc.http_status)
                self.summary.urls_failed += 1
                self._out.put_nowait(
                    fetcher_pb2.FetchResponse(
                        error=fetcher_pb2.FetchError(
                            url=exc.url,
                            code=CODES.get(exc.code, common_pb2.FETCH_ERROR_CODE_UNSPECIFIED),
                            detail=str(exc)[:500],
                            http_status=exc.http_status,
                        )
                    )
                )
                return
            self.summary.urls_ok += 1
            self.summary.urls_not_modified += int(not_modified)
            self.summary.bytes += size
            self.summary.entries_found += len(entries)
            taken = [self._article(url, e) for e in entries]
            articles = [a for a in taken if isinstance(a, common_pb2.Article)]
            skipped = [a for a in taken if isinstance(a, common_pb2.LeftOutArticle)]
            self._send(articles)
            if skipped:
                entries_out = fetcher_pb2.SkippedEntries(entries=skipped)
                self._out.put_nowait(fetcher_pb2.FetchResponse(skipped=entries_out))
            emitted = len(articles)
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("storywire.fetch.bytes", size)
            span.set_attribute("storywire.fetch.not_modified", not_modified)
            span.set_attribute("storywire.fetch.items", emitted)

    async def _entries(self, url: str) -> tuple[list[Entry], bool, int, int]:
        known = await self.memory.get(url)
        fetched = await self.http.fetch(
            url, self.options.per_host, self.options.timeout, known.validators if known else None
        )
        if fetched.not_modified and known is not None:
            return await self._full_text(known.entries), True, 0, 304
        entries = await asyncio.to_thread(parse, fetched)  # CPU work off the event loop
        entries = await self._full_text(entries)
        await self.memory.put(url, Remembered(fetched.validators, entries))
        return entries, False, len(fetched.body), fetched.status

    async def _full_text(self, entries: list[Entry]) -> list[Entry]:
        """Teasers replaced by their pages' text (services/fetcher/pages.py), unless turned off."""
        if not self.options.full_text:
            return entries
        return await PageReader(
            self.http, self.memory, self.options.per_host, self.options.timeout, self.summary
        ).complete(entries)

    def _send(self, articles: list[common_pb2.Article]) -> None:
        size = self.options.batch_size
        if size <= 0:
            for article in articles:
                self._out.put_nowait(fetcher_pb2.FetchResponse(article=article))
            return
        for start in range(0, len(articles), size):
            batch = common_pb2.ArticleBatch(articles=articles[start : start + size])
            self._out.put_nowait(fetcher_pb2.FetchResponse(batch=batch))

    def _article(self, source: str, entry: Entry) -> common_pb2.Article | common_pb2.LeftOutArticle:
        """The article for an entry, or why it is not taken (counted, with the id it would have had)."""
        s = self.summary
        link = entry.url or source
        canonical = canonicalize(link)
        digest = content_hash(entry.title, entry.text)
        aid = article_id(canonical, digest)
        reason = self._skip_reason(entry, canonical, digest)
        if reason is not None:
            return common_pb2.LeftOutArticle(article_id=aid, reason=reason, detail=link[:500])
        self._seen_urls.add(canonical)
        self._seen_hashes.add(digest)
        article = common_pb2.Article(
            id=aid, url=link, canonical_url=canonical, content_hash=digest,
            title=entry.title, text=entry.text, source_url=source, author=entry.author,
        )  # fmt: skip
        if entry.published is not None:
            article.published_at.FromDatetime(entry.published)
        article.fetched_at.GetCurrentTime()
        s.articles += 1
        return article

    def _skip_reason(
        self, entry: Entry, canonical: str, digest: str
    ) -> common_pb2.LeftOutReason.ValueType | None:
        """Why an entry is not taken (and counted under that reason), or None when it is."""
        s, o = self.summary, self.options
        if not entry.title and not entry.text:
            s.skipped_empty += 1
            return common_pb2.LEFT_OUT_REASON_EMPTY
        window_start = self._started - dt.timedelta(hours=o.time_window_hours)
        if o.time_window_hours > 0 and entry.published is not None and entry.published < window_start:
            s.skipped_out_of_window += 1
            return common_pb2.LEFT_OUT_REASON_OUT_OF_WINDOW
        if canonical in self._seen_urls or digest in self._seen_hashes:
            s.duplicates += 1
            return common_pb2.LEFT_OUT_REASON_DUPLICATE
        if o.max_articles and s.articles >= o.max_articles:
            s.skipped_over_limit += 1
            return common_pb2.LEFT_OUT_REASON_OVER_LIMIT
        return None
