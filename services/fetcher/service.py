"""Wires the fetcher into the shared runtime: one pooled HTTP client, the SSRF guard, the 304 memory."""

from __future__ import annotations

import grpc
from storywire.v1 import fetcher_pb2, fetcher_pb2_grpc

from runtime.errors import ErrorMap
from runtime.server import Health
from services.fetcher.conditional import ConditionalCache
from services.fetcher.http import HttpFetcher, HttpLimits
from services.fetcher.safety import AddressGuard, parse_allowlist
from services.fetcher.servicer import FetcherServicer
from services.fetcher.settings import FetcherSettings


def build_http(settings: FetcherSettings) -> HttpFetcher:
    s = settings
    limits = HttpLimits(
        connect_timeout=s.fetch_connect_timeout_seconds,
        read_timeout=s.fetch_read_timeout_seconds,
        max_body_bytes=s.fetch_max_body_bytes,
        max_redirects=s.fetch_max_redirects,
        max_connections=s.fetch_max_connections,
        retries=s.fetch_retries,
    )
    guard = AddressGuard(parse_allowlist(s.fetch_allow_networks.split(",")))
    return HttpFetcher(guard, limits, s.fetch_user_agent)


class FetcherService:
    name = "fetcher"
    grpc_service_names = (fetcher_pb2.DESCRIPTOR.services_by_name["FetcherService"].full_name,)

    def __init__(self, settings: FetcherSettings) -> None:
        self.settings = settings
        self.http = build_http(settings)
        self.memory = ConditionalCache(settings.redis_url)

    error_map = ErrorMap()  # no domain errors of its own reach a client

    def register(self, server: grpc.aio.Server) -> None:
        fetcher_pb2_grpc.add_FetcherServiceServicer_to_server(
            FetcherServicer(self.settings, self.http, self.memory), server
        )

    async def start(self, health: Health) -> None:
        await health.set_serving(True)

    async def stop(self) -> None:
        await self.http.aclose()
        await self.memory.aclose()
