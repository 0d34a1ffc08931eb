"""Store scenario: bulk article and story writes.

Variants, same rows, same database:
- ``executemany upsert``: the simple alternative, one INSERT ... ON CONFLICT statement per row;
- ``direct (COPY + upsert)``: the store's own batch writer, called in-process (no gRPC);
- ``gRPC PutArticles stream``: through the running store service, the way the pipeline writes.
Goal: >= 50,000 rows/s direct and >= 20,000 rows/s through gRPC.
"""

from __future__ import annotations

import hashlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator

from storywire.v1 import common_pb2, store_pb2

from bench.env import BenchEnv
from bench.report import Row
from devtools.health import wait_healthy
from devtools.services import ServiceProcess, dev_channel
from runtime.batching import pipelined
from runtime.settings import load_settings
from runtime.stubs import store_worker_stub
from services.store.convert import from_ts
from services.store.database import Database
from services.store.settings import StoreSettings
from services.store.validation import article_id
from services.store.writes import Counts, Writer


def articles(n: int, tag: str) -> list[common_pb2.Article]:
    out = []
    for i in range(n):
        body = f"{tag} article {i}: " + "lorem ipsum dolor sit amet " * 20
        canonical = f"https://bench.example/{tag}/{i}"
        a = common_pb2.Article(
            url=canonical, canonical_url=canonical, content_hash=hashlib.sha256(body.encode()).hexdigest(),
            title=f"Bench {i}", text=body, source_url=f"https://bench.example/{tag}/feed",
        )  # fmt: skip
        a.published_at.FromSeconds(1_790_000_000 + i)
        out.append(a)
    return out


def median_row(variant: str, walls: list[float], n: int, notes: str = "") -> Row:
    walls = sorted(walls)
    spread = f"runs {', '.join(f'{w:.2f}' for w in walls)} s"
    return Row("store", variant, statistics.median(walls), n, "rows", notes=f"{notes}; {spread}".lstrip("; "))


async def run(env: BenchEnv) -> list[Row]:
    n = env.size(50_000, 2_000)
    repeats = env.size(3, 1)
    rows = await in_process(env, n, repeats)
    rows.append(await through_grpc(env, n, repeats))
    return rows


async def in_process(env: BenchEnv, n: int, repeats: int) -> list[Row]:
    """The simple alternative and the store's writer, both in this process against the same database."""
    settings = load_settings(
        StoreSettings, database_url=env.stack.postgres_dsn, store_port=0, log_level="WARNING", db_pool_max=4
    )
    db = Database(settings)

    async def connected() -> None:
        return None

    db.start(connected)
    await db.wait_connected()
    writer = Writer(db)
    batch = settings.store_batch_size
    in_flight = settings.store_write_concurrency

    async def simple_run(items: list[common_pb2.Article]) -> None:
        """The simple alternative: executemany of a single-row upsert, same columns."""
        records = [
            (article_id(a.canonical_url, a.content_hash), a.url, a.canonical_url, a.content_hash, a.title,
             a.text, from_ts(a.published_at), a.source_url, a.author, from_ts(a.fetched_at))
            for a in items
        ]  # fmt: skip
        async with db.pool.acquire() as conn:
            await conn.executemany(
                """INSERT INTO articles (id, url, canonical_url, content_hash, title, body, published_at,
                                         source_url, author, fetched_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING""",
                records,
            )

    async def direct_run(items: list[common_pb2.Article]) -> Counts:
        """The store's writer in-process: batches of COPY + upsert, pipelined as the service does."""
        counts = Counts()

        async def source() -> AsyncIterator[list[common_pb2.Article]]:
            for i in range(0, len(items), batch):
                yield items[i : i + batch]

        async def write(first: int, chunk: list[common_pb2.Article]) -> None:
            await writer.write_articles(list(enumerate(chunk, first)), counts)

        await pipelined(source(), write, in_flight)
        return counts

    walls: dict[str, list[float]] = {"simple": [], "direct": [], "retry": []}
    try:
        for _ in range(repeats):
            # every run is timed from protobuf messages to committed rows, on fresh rows
            items = articles(n, f"simple-{uuid.uuid4().hex[:8]}")
            start = time.perf_counter()
            await simple_run(items)
            walls["simple"].append(time.perf_counter() - start)

            items = articles(n, f"direct-{uuid.uuid4().hex[:8]}")
            start = time.perf_counter()
            counts = await direct_run(items)
            walls["direct"].append(time.perf_counter() - start)
            assert counts.inserted == n, counts
            start = time.perf_counter()
            counts = await direct_run(items)
            walls["retry"].append(time.perf_counter() - start)
            assert counts.duplicates == n, counts
    finally:
        await db.close()
    return [
        median_row("executemany upsert (simple)", walls["simple"], n, "cannot report updates"),
        median_row("direct (COPY + upsert)", walls["direct"], n, f"batch {batch}, {in_flight} in flight"),
        median_row("direct retry (all duplicates)", walls["retry"], n),
    ]


async def through_grpc(env: BenchEnv, n: int, repeats: int) -> Row:
    """Through the store service in its own process, as deployed; chunks of 500 articles per message."""
    proc = ServiceProcess("store", env={**env.stack.env(), "STORYWIRE_LOG_LEVEL": "WARNING"}).start()
    grpc_walls: list[float] = []
    try:
        await wait_healthy(proc.address, "store")
        async with dev_channel(proc.address) as channel:
            stub = store_worker_stub(channel)
            for _ in range(repeats):
                via = articles(n, f"grpc-{uuid.uuid4().hex[:8]}")

                async def stream(
                    via: list[common_pb2.Article] = via,
                ) -> AsyncIterator[store_pb2.PutArticlesRequest]:
                    for i in range(0, n, 500):
                        yield store_pb2.PutArticlesRequest(articles=via[i : i + 500])

                start = time.perf_counter()
                reply = await stub.PutArticles(stream())
                grpc_walls.append(time.perf_counter() - start)
                assert reply.result.inserted == n, reply.result
    finally:
        proc.stop()
    return median_row("gRPC PutArticles stream", grpc_walls, n, "store in its own process")
