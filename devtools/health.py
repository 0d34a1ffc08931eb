"""Wait for a service to report SERVING, with a clear error naming it when it does not."""

from __future__ import annotations

import asyncio

from runtime.client import ClientSecurity, ServiceUnavailableError, check_health, open_channel


async def wait_healthy(
    address: str, name: str = "service", timeout: float = 30.0, security: ClientSecurity | None = None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "no answer"
    async with open_channel(address, security=security) as channel:
        while loop.time() < deadline:
            try:
                if await check_health(channel, name, address, rpc_timeout=1.0):
                    return
                last = "NOT_SERVING"
            except ServiceUnavailableError as exc:
                last = str(exc)
            await asyncio.sleep(0.05)
    raise ServiceUnavailableError(name, address, f"not SERVING after {timeout}s ({last})")
