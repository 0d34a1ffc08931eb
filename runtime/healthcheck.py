"""``python -m runtime.healthcheck [HOST:PORT]``: exit 0 when the gRPC server reports SERVING, else 1.

The container image's HEALTHCHECK and anything else that needs a probe without extra binaries use it;
the port defaults to the one named by $STORYWIRE_HEALTH_PORT, on ``localhost`` (the name a service
certificate carries for this probe). With STORYWIRE_TLS_CA_FILE set it dials with TLS (Kubernetes'
own gRPC probes cannot, so the manifests run this instead when TLS is on).
"""

from __future__ import annotations

import asyncio
import os
import sys

from runtime.client import ServiceUnavailableError, check_health, open_channel


async def probe(address: str) -> bool:
    async with open_channel(address) as channel:
        return await check_health(channel, "service", address, rpc_timeout=3.0)


def main(argv: list[str]) -> int:
    address = argv[0] if argv else f"localhost:{os.environ.get('STORYWIRE_HEALTH_PORT', '50051')}"
    try:
        serving = asyncio.run(probe(address))
    except ServiceUnavailableError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print("SERVING" if serving else "NOT_SERVING")
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
