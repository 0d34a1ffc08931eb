"""The asyncpg pool: connected in the background with backoff, so the store starts even while
PostgreSQL is down (health NOT_SERVING until it is up), plus the classification of database errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from runtime.logging import get_logger
from runtime.retry import reconnect
from services.store.migrate import migrate
from services.store.settings import StoreSettings

log = get_logger(__name__)

#: errors that mean "PostgreSQL is unreachable or the connection broke": retryable, UNAVAILABLE to clients
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # connection closed / released mid-operation
    asyncpg.InternalClientError,  # protocol state left broken by a connection lost mid-operation
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


if TYPE_CHECKING:
    #: a connection, whether acquired from the pool or opened directly
    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Conn = asyncpg.Connection
_RETRY_AT_START: tuple[type[Exception], ...] = (*TRANSIENT_ERRORS, asyncpg.PostgresError)


def required(row: asyncpg.Record | None) -> asyncpg.Record:
    """A row that the query guarantees (UPDATE ... RETURNING on a locked row, aggregate)."""
    if row is None:
        raise RuntimeError("query returned no row where one was guaranteed")
    return row


class DatabaseUnavailableError(ConnectionError):
    """The pool is not connected yet (PostgreSQL unreachable since start)."""


class Database:
    """Owns the pool; ``pool`` raises DatabaseUnavailableError until the first connection succeeded."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DatabaseUnavailableError("PostgreSQL is not reachable yet")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection inside a transaction; a connection that failed transiently is terminated,
        so the pool replaces it instead of handing a broken one to the next caller."""
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    yield conn
            except TRANSIENT_ERRORS:
                conn.terminate()
                raise

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def start(self, on_connected: Callable[[], Awaitable[None]]) -> None:
        """Connect (and migrate) in the background, retrying with capped exponential backoff."""
        self._task = asyncio.create_task(self._connect_loop(on_connected), name="store-db-connect")

    async def _connect_loop(self, on_connected: Callable[[], Awaitable[None]]) -> None:
        s = self.settings
        attempts = 0
        async for attempt in reconnect(s.db_retry_max_seconds).retries(_RETRY_AT_START):
            with attempt:  # each failure is logged by the retry policy, with its wait
                attempts = attempt.num
                pool = await asyncpg.create_pool(
                    s.database_url.get_secret_value(),
                    min_size=s.db_pool_min,
                    max_size=max(s.db_pool_max, s.db_pool_min),
                    timeout=s.db_connect_timeout_seconds,
                    command_timeout=s.db_statement_timeout_seconds + 5,
                    server_settings={
                        "statement_timeout": str(int(s.db_statement_timeout_seconds * 1000)),
                        "application_name": "storywire-store",
                    },
                )
                if s.store_migrate_on_start:
                    async with pool.acquire() as conn:
                        await migrate(conn)
        self._pool = pool
        self._connected.set()
        log.info("PostgreSQL connected", attempts=attempts)
        await on_connected()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._pool is not None:
            await self._pool.close()
