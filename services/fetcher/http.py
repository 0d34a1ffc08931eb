"""One pooled HTTP client for all fetches: global and per-host limits, timeouts, a body cap enforced
while streaming, manual redirects (each target passes the SSRF guard), retries for retryable failures
only, and conditional GET."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from runtime.retry import TRANSIENT
from runtime.validation import InvalidArgumentError, normalize_url
from services.fetcher.safety import AddressGuard, BlockedError, DnsError

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class FetchFailedError(Exception):
    """A URL failed; ``code`` is a FetchErrorCode name suffix (``timeout``, ``too_large``...)."""

    def __init__(self, code: str, detail: str, url: str, http_status: int = 0) -> None:
        super().__init__(detail)
        self.code = code
        self.url = url
        self.http_status = http_status


@dataclass(frozen=True)
class Validators:
    etag: str = ""
    last_modified: str = ""


@dataclass
class Fetched:
    url: str  # final URL after redirects
    status: int
    content_type: str
    charset: str | None
    body: bytes
    validators: Validators
    not_modified: bool = False


@dataclass(frozen=True)
class HttpLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0
    max_body_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    max_connections: int = 64
    retries: int = 2
    max_retry_after: float = 10.0


class BlockedConnectError(httpcore.ConnectError):
    """The guard refused the address the connection would have gone to."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the SSRF guard at the socket: the host is resolved here, every
    address is checked, and the connection goes to a checked address. httpx would otherwise resolve the
    name again itself, and a DNS answer that changed since the guard's check (rebinding) would go
    through. TLS still verifies the certificate against the host name (httpcore passes the name, not
    the address, as server_hostname)."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.guard.allowed_addresses(host, port)
        except BlockedError as exc:
            raise BlockedConnectError(str(exc)) from None
        except DnsError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        error: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(guard: AddressGuard, limits: HttpLimits) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, with its connection pool on the guarded backend. httpx has no public
    setting for the backend, so the pool is replaced (httpx is pinned below 0.29; a test fails if the
    guard is bypassed)."""
    transport = httpx.AsyncHTTPTransport(
        http2=False,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=limits.max_connections, max_keepalive_connections=limits.max_connections
        ),
    )
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_connections,
        keepalive_expiry=5.0,
        http1=True,
        http2=False,
        network_backend=GuardedBackend(guard),
    )
    return transport


class HttpFetcher:
    def __init__(self, guard: AddressGuard, limits: HttpLimits, user_agent: str) -> None:
        self.guard = guard
        self.limits = limits
        self._global = asyncio.Semaphore(limits.max_connections)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._host_limit: dict[str, int] = defaultdict(int)
        self._http = httpx.AsyncClient(
            transport=guarded_transport(guard, limits),
            follow_redirects=False,
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate, br"},
            timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _host_semaphore(self, url: str, per_host: int) -> asyncio.Semaphore:
        host = urlsplit(url).netloc.lower()
        sem = self._hosts.get(host)
        if sem is None or self._host_limit[host] != per_host:
            sem = self._hosts[host] = asyncio.Semaphore(per_host)
            self._host_limit[host] = per_host
        return sem

    async def fetch(
        self, url: str, per_host: int, total_timeout: float, known: Validators | None = None
    ) -> Fetched:
        """GET with redirects, retries and a total deadline; raises FetchFailedError with a precise code.

        A URL that is not an absolute http(s) URL without control characters or spaces fails at once
        (``invalid_url``), before any request."""
        try:
            normalize_url(url, "url")
        except InvalidArgumentError as exc:
            raise FetchFailedError("invalid_url", exc.reason, url) from None
        try:
            async with asyncio.timeout(total_timeout):
                return await self._fetch_with_retries(url, per_host, known)
        except TimeoutError:
            raise FetchFailedError("timeout", f"no complete answer within {total_timeout:g}s", url) from None

    async def _fetch_with_retries(self, url: str, per_host: int, known: Validators | None) -> Fetched:
        """The runtime's retry policy (exponential backoff with jitter), or the server's Retry-After."""

        def retryable(exc: Exception) -> bool | float:
            if not isinstance(exc, _RetryableError):
                return False
            return min(exc.retry_after, self.limits.max_retry_after) if exc.retry_after is not None else True

        try:
            async for attempt in TRANSIENT.with_attempts(self.limits.retries + 1).retries(retryable):
                with attempt:
                    return await self._follow(url, per_host, known)
        except _RetryableError as exc:
            raise FetchFailedError(exc.code, str(exc), exc.url, exc.http_status) from None
        raise AssertionError("unreachable: the policy returns or raises")

    async def _follow(self, url: str, per_host: int, known: Validators | None) -> Fetched:
        """Follow redirects; a failure at a redirect target is reported under ``url``, the URL that was
        asked for, with the target in the detail."""
        current = url
        try:
            return await self._follow_from(url, per_host, known)
        except (FetchFailedError, _RetryableError) as exc:
            if exc.url == current:
                raise
            exc.args = (f"redirected to {exc.url}: {exc}",)
            exc.url = url
            raise

    async def _follow_from(self, url: str, per_host: int, known: Validators | None) -> Fetched:
        current = url
        for _ in range(self.limits.max_redirects + 1):
            try:
                await self.guard.check(current)
            except BlockedError as exc:
                raise FetchFailedError(exc.code, str(exc), current) from None
            except DnsError as exc:
                raise FetchFailedError("dns", str(exc), current) from None
            headers = {}
            if known is not None and current == url:
                if known.etag:
                    headers["If-None-Match"] = known.etag
                if known.last_modified:
                    headers["If-Modified-Since"] = known.last_modified
            async with self._global, self._host_semaphore(current, per_host):
                result = await self._get(current, headers)
            if isinstance(result, str):
                current = result  # a redirect target, checked by the guard on the next turn
                continue
            return result
        raise FetchFailedError("too_many_redirects", f"more than {self.limits.max_redirects} redirects", url)

    async def _get(self, url: str, headers: dict[str, str]) -> Fetched | str:
        try:
            async with self._http.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise FetchFailedError(
                            "http_status", f"redirect {status} without Location", url, status
                        )
                    return str(urljoin(url, str(location)))
                if status == 304:
                    return Fetched(url, 304, "", None, b"", Validators(), not_modified=True)
                if status in RETRY_STATUSES:
                    raise _RetryableError(
                        "http_status", f"HTTP {status}", url, status, _retry_after(response)
                    )
                if status >= 400:
                    raise FetchFailedError("http_status", f"HTTP {status}", url, status)
                body = await self._read_capped(response, url)
                validators = Validators(
                    response.headers.get("etag", ""), response.headers.get("last-modified", "")
                )
                content_type = response.headers.get("content-type", "")
                kind = content_type.split(";")[0].strip().lower()
                charset: str | None = response.charset_encoding
                return Fetched(url, status, kind, charset, body, validators)
        except httpx.DecodingError as exc:
            raise FetchFailedError("decode", f"bad compressed body: {exc}", url) from None
        except httpx.TimeoutException as exc:
            raise FetchFailedError("timeout", f"{type(exc).__name__}", url) from None
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, BlockedConnectError):
                raise FetchFailedError("blocked_address", str(exc), url) from None
            raise _RetryableError("connect", f"{type(exc).__name__}: {exc}", url) from None
        except httpx.RemoteProtocolError as exc:
            raise _RetryableError("connect", f"{type(exc).__name__}: {exc}", url) from None
        except httpx.TransportError as exc:
            raise FetchFailedError("connect", f"{type(exc).__name__}: {exc}", url) from None

    async def _read_capped(self, response: httpx.Response, url: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            raise FetchFailedError(
                "too_large", f"Content-Length {declared} exceeds {self.limits.max_body_bytes}", url
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # decompressed: the cap applies to what we would hold
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                raise FetchFailedError("too_large", f"body exceeds {self.limits.max_body_bytes} bytes", url)
            chunks.append(chunk)
        return b"".join(chunks)


class _RetryableError(Exception):
    def __init__(
        self, code: str, detail: str, url: str, http_status: int = 0, retry_after: float | None = None
    ):
        super().__init__(detail)
        self.code, self.url, self.http_status, self.retry_after = code, url, http_status, retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
