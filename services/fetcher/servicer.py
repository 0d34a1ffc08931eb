"""The FetcherService gRPC handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from storywire.v1 import common_pb2, fetcher_pb2, fetcher_pb2_grpc

from runtime.logging import get_logger
from services.fetcher.conditional import ConditionalCache
from services.fetcher.http import HttpFetcher
from services.fetcher.run import FetchRun, RunOptions
from services.fetcher.settings import FetcherSettings

log = get_logger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
MAX_URLS = 10_000


def request_problem(request: fetcher_pb2.FetchRequest) -> str | None:
    o = request.options
    if not request.urls:
        return "urls: at least one URL is required"
    if len(request.urls) > MAX_URLS:
        return f"urls: {len(request.urls)} URLs; at most {MAX_URLS} are allowed"
    checks = [
        ("options.time_window_hours", o.time_window_hours, 0, 24 * 366),
        ("options.max_articles", o.max_articles, 0, 1_000_000),
        ("options.per_host_concurrency", o.per_host_concurrency, 0, 256),
        ("options.timeout_seconds", o.timeout_seconds, 0, 600),
        ("options.batch_size", o.batch_size, 0, 1000),
        ("options.heartbeat_seconds", o.heartbeat_seconds, 0, 60),
    ]
    for name, value, low, high in checks:
        if not low <= value <= high:
            return f"{name}: {value} is outside [{low}, {high}]"
    return None


class FetcherServicer(fetcher_pb2_grpc.FetcherServiceServicer):
    def __init__(self, settings: FetcherSettings, http: HttpFetcher, memory: ConditionalCache) -> None:
        self.settings = settings
        self.http = http
        self.memory = memory

    async def Fetch(
        self, request: fetcher_pb2.FetchRequest, context: Context
    ) -> AsyncIterator[fetcher_pb2.FetchResponse]:
        problem = request_problem(request)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        o, s = request.options, self.settings
        options = RunOptions(
            time_window_hours=o.time_window_hours,
            max_articles=o.max_articles,
            per_host=o.per_host_concurrency or s.fetch_per_host_concurrency,
            timeout=o.timeout_seconds or s.fetch_timeout_seconds,
            full_text=o.full_text != common_pb2.FULL_TEXT_OFF,
            batch_size=o.batch_size,
            heartbeat=o.heartbeat_seconds,
        )
        run = FetchRun(self.http, self.memory, options)
        async for response in run.run(list(request.urls)):
            yield response
        sm = run.summary
        log.info(
            "fetch finished", job_id=request.job_id, urls=sm.urls_total, failed=sm.urls_failed,
            not_modified=sm.urls_not_modified, articles=sm.articles, duplicates=sm.duplicates,
        )  # fmt: skip
