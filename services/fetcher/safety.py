"""SSRF guard: only http(s), and never an address in a loopback, private, link-local, multicast or
reserved range unless an allowlist names it. Checked after DNS resolution, before every request,
including every redirect target, and again when the HTTP client opens a connection, on the addresses it
connects to: a DNS answer that changes between the check and the connection (rebinding) is caught."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedError(ValueError):
    """The URL may not be fetched; ``code`` is ``invalid_url`` or ``blocked_address``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DnsError(OSError):
    """The host name does not resolve."""


def parse_allowlist(entries: Sequence[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip()]


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _forbidden(ip.ipv4_mapped)
    return bool(
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
        or ip.is_unspecified or not ip.is_global
    )  # fmt: skip


class AddressGuard:
    def __init__(self, allowlist: Sequence[IPNetwork]) -> None:
        self.allowlist = list(allowlist)

    def _allowed(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in net for net in self.allowlist) or not _forbidden(ip)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses ``host`` stands for (a literal address stands for itself)."""
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise DnsError(f"cannot resolve {host}: {exc.strerror}") from None
        return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))

    async def allowed_addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host``; raise BlockedError unless every address it resolves to is allowed."""
        addresses = await self.resolve(host, port)
        for ip in addresses:
            if not self._allowed(ip):
                raise BlockedError(
                    "blocked_address",
                    f"{host} resolves to {ip}, a non-public address that is not allowlisted",
                )
        return addresses

    async def check(self, url: str) -> None:
        """Raise BlockedError (or DnsError) unless the URL is http(s) and every address its host
        resolves to is allowed. The HTTP client checks again at connect time, on the very addresses
        it connects to (see ``services.fetcher.transport.GuardedBackend``)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BlockedError("invalid_url", f"does not parse: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise BlockedError("invalid_url", f"scheme {parts.scheme or '(none)'!r} is not http or https")
        host = parts.hostname
        if not host:
            raise BlockedError("invalid_url", "no host")
        await self.allowed_addresses(host, port or (443 if parts.scheme == "https" else 80))
