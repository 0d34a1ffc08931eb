"""Two-tier cache of LLM results: an in-process LRU bounded by bytes in front of Redis (zlib, TTL).

Redis is optional at run time: when it is unreachable the memory tier keeps serving, one warning is
logged, and Redis is tried again after a pause (not on every request), with one line when it recovers.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass

import redis.asyncio as aioredis
from cachetools import LRUCache
from redis.exceptions import RedisError

from runtime.logging import get_logger

log = get_logger(__name__)


@dataclass
class TierStats:
    hits: int = 0
    misses: int = 0
    writes: int = 0
    evictions: int = 0
    bytes: int = 0
    entries: int = 0
    errors: int = 0
    available: bool = True


class _SizedLRU(LRUCache[str, bytes]):
    """cachetools' LRU sized by its values' bytes, counting what it evicts."""

    def __init__(self, max_bytes: int, stats: TierStats) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=len)
        self.stats = stats

    def popitem(self) -> tuple[str, bytes]:
        item = super().popitem()
        self.stats.evictions += 1
        return item


class MemoryTier:
    """LRU bounded by the total size of its values (cachetools)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.stats = TierStats()
        self._data = _SizedLRU(max_bytes, self.stats)

    def get(self, key: str) -> bytes | None:
        value = self._data.get(key)
        if value is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        self._data[key] = value
        self.stats.writes += 1
        self.stats.bytes = int(self._data.currsize)
        self.stats.entries = len(self._data)


class RedisTier:
    """Compressed values with a TTL; failures mark it unavailable for ``retry_seconds``."""

    def __init__(
        self, url: str, ttl_seconds: int, *, timeout: float = 0.5, retry_seconds: float = 5.0
    ) -> None:
        self.ttl = ttl_seconds
        self.retry_seconds = retry_seconds
        self.stats = TierStats()
        self._down_until = 0.0
        self._client = (
            aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout) if url else None
        )
        if self._client is None:
            self.stats.available = False

    def _usable(self) -> bool:
        return self._client is not None and time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        self.stats.errors += 1
        if self.stats.available:
            log.warning(
                "Redis cache unreachable; serving from memory only", error=f"{type(exc).__name__}: {exc}"
            )
        self.stats.available = False
        self._down_until = time.monotonic() + self.retry_seconds

    def _ok(self) -> None:
        if not self.stats.available:
            log.info("Redis cache reachable again")
        self.stats.available = True

    async def get(self, key: str) -> bytes | None:
        if not self._usable():
            return None
        assert self._client is not None
        try:
            raw = await self._client.get(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._ok()
        if raw is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return zlib.decompress(raw if isinstance(raw, bytes) else raw.encode())

    async def put(self, key: str, value: bytes) -> None:
        if not self._usable():
            return
        assert self._client is not None
        packed = zlib.compress(value, 6)
        try:
            await self._client.set(key, packed, ex=self.ttl)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self._ok()
        self.stats.writes += 1
        self.stats.bytes += len(packed)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


@dataclass
class TwoTierCache:
    memory: MemoryTier
    redis: RedisTier
    prefix: str = "storywire:llm:"

    async def get(self, key: str) -> tuple[bytes, str] | None:
        """The value and the tier that had it ("memory" or "redis"); a Redis hit fills memory."""
        value = self.memory.get(key)
        if value is not None:
            return value, "memory"
        value = await self.redis.get(self.prefix + key)
        if value is not None:
            self.memory.put(key, value)
            return value, "redis"
        return None

    async def put(self, key: str, value: bytes) -> None:
        self.memory.put(key, value)
        await self.redis.put(self.prefix + key, value)
