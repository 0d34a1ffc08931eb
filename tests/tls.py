"""Throwaway TLS material made at run time with trustme: a CA, a certificate for the local services,
and a second CA that signed nothing of ours."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

NAMES = ("localhost", "127.0.0.1", "store", "fetcher", "synthesizer")


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server's certificate


def make_certs(root: Path) -> Certs:
    ca = trustme.CA()
    server = ca.issue_cert(*NAMES)
    certs = Certs(root / "ca.crt", root / "tls.crt", root / "tls.key", root / "other-ca.crt")
    ca.cert_pem.write_to_path(str(certs.ca))
    server.private_key_pem.write_to_path(str(certs.key))
    certs.cert.write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    trustme.CA().cert_pem.write_to_path(str(certs.other_ca))
    return certs
