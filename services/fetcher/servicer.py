"""The FetcherService gRPC handler."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import grpc
from storywire.v1 import common_pb2, fetcher_pb2, fetcher_pb2_grpc

from runtime.errors import InvalidArgumentError
from runtime.logging import get_logger
from runtime.memory import release_free_memory
from services.fetcher.conditional import ConditionalCache
from services.fetcher.http import HttpFetcher
from services.fetcher.run import FetchRun, RunOptions
from services.fetcher.settings import FetcherSettings

log = get_logger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


class FetcherServicer(fetcher_pb2_grpc.FetcherServiceServicer):
    def __init__(self, settings: FetcherSettings, http: HttpFetcher, memory: ConditionalCache) -> None:
        self.settings = settings
        self.http = http
        self.memory = memory
        self._active = 0  # Fetch calls in progress

    async def Fetch(
        self, request: fetcher_pb2.FetchRequest, context: Context
    ) -> AsyncIterator[fetcher_pb2.FetchResponse]:
        # fields are checked at the edge (runtime.rules); each URL on its own, as a per-URL FetchError
        if not request.urls:
            raise InvalidArgumentError("urls", "at least one URL is required")
        o, s = request.options, self.settings
        options = RunOptions(
            time_window_hours=o.time_window_hours,
            max_articles=o.max_articles,
            per_host=o.per_host_concurrency or s.fetch_per_host_concurrency,
            timeout=o.timeout_seconds or s.fetch_timeout_seconds,
            full_text=o.full_text != common_pb2.FULL_TEXT_OFF,
            heartbeat=o.heartbeat_seconds,
            batch_size=o.batch_size,
        )
        run = FetchRun(self.http, self.memory, options)
        self._active += 1
        try:
            # closed here, in the RPC's task, when the client goes away (its URL tasks cancelled at once)
            async with contextlib.aclosing(run.run(list(request.urls))) as responses:
                async for response in responses:
                    yield response
        finally:
            self._active -= 1
            if self._active == 0:  # idle: hand what the fetch allocated back to the system
                gc.collect()
                release_free_memory()
        sm = run.summary
        log.info(
            "fetch finished", job_id=request.job_id, urls=sm.urls_total, failed=sm.urls_failed,
            not_modified=sm.urls_not_modified, articles=sm.articles, duplicates=sm.duplicates,
        )  # fmt: skip
