"""Canonical URLs: the same article under different tracking parameters or fragments is one article."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_")
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "igshid",
        "ref",
        "ref_src",
        "cmpid",
        "ncid",
        "spm",
        "_ga",
    }
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def canonicalize(url: str) -> str:
    """Lower-case scheme and host, drop default ports, fragments and tracking parameters, sort the query."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))
