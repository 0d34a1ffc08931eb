"""One pooled HTTP client for all fetches: global and per-host limits, timeouts, a body cap enforced
while streaming, manual redirects (each target passes the SSRF guard), retries for retryable failures
only, and conditional GET."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from runtime.retry import TRANSIENT
from runtime.validation import InvalidArgumentError, normalize_url
from services.fetcher.safety import AddressGuard, BlockedError, DnsError
from services.fetcher.transport import BlockedConnectError, GuardedTransport

RETRY_STATUSES = frozenset({429, 502, 503, 504})
DRAIN_BYTES = 64 * 1024  # the largest unwanted body read to keep its connection (see _drain)
DRAIN_SECONDS = 1.0


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
    max_body_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    max_connections: int = 64
    retries: int = 2
    max_retry_after: float = 10.0


@dataclass
class _Host:
    limit: int
    slots: asyncio.Semaphore
    users: int = 0  # requests holding or waiting for a slot


class HostSlots:
    """Per-host concurrency: a semaphore for each host that has requests in flight or waiting, forgotten
    as soon as it has none, so the table holds only the hosts in use (not every host ever fetched)."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Host] = {}

    def __len__(self) -> int:
        return len(self._hosts)

    @asynccontextmanager
    async def slot(self, url: str, limit: int) -> AsyncIterator[None]:
        """Hold one of the ``limit`` slots of the URL's host (host and port) while the block runs."""
        key = urlsplit(url).netloc.lower()
        host = self._hosts.get(key)
        if host is None or host.limit != limit:
            host = self._hosts[key] = _Host(limit, asyncio.Semaphore(limit))
        host.users += 1
        try:
            async with host.slots:
                yield
        finally:
            host.users -= 1
            if host.users == 0 and self._hosts.get(key) is host:
                del self._hosts[key]


class HttpFetcher:
    def __init__(self, guard: AddressGuard, limits: HttpLimits, user_agent: str) -> None:
        self.guard = guard
        self.limits = limits
        self._global = asyncio.Semaphore(limits.max_connections)
        self.hosts = HostSlots()
        self._http = httpx.AsyncClient(
            transport=GuardedTransport(guard, limits.max_connections),
            follow_redirects=False,
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate, br"},
            timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

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
            # the host's slot first: requests queued on one slow host must not hold global permits
            async with self.hosts.slot(current, per_host), self._global:
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
                if status in (301, 302, 303, 307, 308) or status in RETRY_STATUSES or status >= 400:
                    await _drain(response)  # the connection goes back to the pool, not closed
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


async def _drain(response: httpx.Response) -> None:
    """Read the small body of a response whose body is not wanted (an error page, a redirect's), so its
    connection can serve the next request: closing a response with its body unread closes the
    connection, and each 404 of a page would cost a new one. A body declared or found larger than
    DRAIN_BYTES, one that does not arrive within DRAIN_SECONDS, or a broken one is given up, and its
    connection closed as before; the response's own outcome (its status) is what the caller reports."""
    declared = response.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > DRAIN_BYTES):
        return
    read = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > DRAIN_BYTES:
                    return
    except (TimeoutError, httpx.TransportError):
        return


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
