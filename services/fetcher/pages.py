"""Full text from teaser feeds: each entry that does not carry its whole article gets its own page
read and extracted (trafilatura). Page fetches go through the same client as feeds, so the SSRF guard
(redirects included), the global and per-host limits, the size cap and conditional GET apply to them.
A page that fails, or yields no longer text than the feed gave, leaves the entry as it was, and is
counted in the run's summary."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from storywire.v1 import fetcher_pb2

from runtime.logging import get_logger
from services.fetcher.conditional import ConditionalCache, Remembered
from services.fetcher.http import FetchFailedError, HttpFetcher
from services.fetcher.parse import Entry, parse_html

log = get_logger(__name__)


class PageReader:
    def __init__(
        self,
        http: HttpFetcher,
        memory: ConditionalCache,
        per_host: int,
        timeout: float,
        summary: fetcher_pb2.FetchSummary,
    ) -> None:
        self.http = http
        self.memory = memory
        self.per_host = per_host
        self.timeout = timeout
        self.summary = summary

    async def complete(self, entries: list[Entry]) -> list[Entry]:
        """The entries, each teaser replaced by its page's text where that works (order kept)."""
        return list(await asyncio.gather(*(self._complete(e) for e in entries)))

    async def _complete(self, entry: Entry) -> Entry:
        if entry.full or not entry.url:
            return entry
        try:
            page = await self._page(entry.url)
        except FetchFailedError as exc:
            self.summary.pages_failed += 1
            log.debug("page not read; the feed's text stays", url=entry.url, code=exc.code, detail=str(exc))
            return entry
        if len(page.text) <= len(entry.text):
            self.summary.pages_failed += 1
            return entry
        return replace(
            entry,
            title=entry.title or page.title,
            text=page.text,
            published=entry.published or page.published,
            author=entry.author or page.author,
            full=True,
        )

    async def _page(self, url: str) -> Entry:
        known = await self.memory.get(url)
        fetched = await self.http.fetch(url, self.per_host, self.timeout, known.validators if known else None)
        self.summary.pages_fetched += 1
        if fetched.not_modified and known is not None and known.entries:
            self.summary.pages_not_modified += 1
            return known.entries[0]
        page = await asyncio.to_thread(parse_html, fetched)  # CPU work off the event loop
        await self.memory.put(url, Remembered(fetched.validators, [page]))
        return page
