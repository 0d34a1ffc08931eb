"""``python -m devtools.secrets DIR``: TLS material and tokens for a local deployment (docker compose).

Writes ``ca.crt``, ``tls.crt`` and ``tls.key`` (a throwaway CA made with trustme, and one certificate
naming every service as compose and Kubernetes call them, plus ``localhost`` for the in-container health
probe) and ``service-token`` and ``client-token`` (random). Existing files are kept unless ``--force``.
For production, bring certificates from your own CA (or cert-manager) and tokens from your secret store.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

import trustme

SERVICES = ("store", "fetcher", "synthesizer")
NAMES = ("localhost", "127.0.0.1", *SERVICES, *(f"storywire-{s}" for s in SERVICES))
FILES = ("ca.crt", "tls.crt", "tls.key", "service-token", "client-token")


def write_secrets(directory: Path, force: bool = False) -> list[Path]:
    """Create the files in ``directory``; return those written."""
    directory.mkdir(parents=True, exist_ok=True)
    if not force and all((directory / name).exists() for name in FILES):
        return []
    ca = trustme.CA(organization_name="storywire local CA")
    cert = ca.issue_cert(*NAMES)
    content = {
        "ca.crt": ca.cert_pem.bytes(),
        "tls.crt": b"".join(pem.bytes() for pem in cert.cert_chain_pems),
        "tls.key": cert.private_key_pem.bytes(),
        "service-token": secrets.token_urlsafe(32).encode(),
        "client-token": secrets.token_urlsafe(32).encode(),
    }
    written = []
    for name, data in content.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o644)  # the containers run as uid 10001 and read these through bind mounts
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.secrets", description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    written = write_secrets(args.directory, args.force)
    print(f"wrote {', '.join(p.name for p in written)} in {args.directory}" if written else "secrets exist")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
