"""Push-based job progress: one LISTEN connection per store replica wakes the local watchers.

Notifications only say "job X has new events"; each watcher then reads the durable event log
(``job_events``) after the last sequence number it sent, so coalesced notifications, a lost listener
connection or a late join never lose or reorder an event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

import asyncpg
import grpc
from storywire.v1 import store_pb2

from runtime.errors import RequestError
from runtime.logging import get_logger
from runtime.retry import Retry, reconnect
from services.store import jobstate
from services.store.database import TRANSIENT_ERRORS, Database
from services.store.joblog import JOB_EVENTS_CHANNEL, JOBS_CHANNEL
from services.store.jobs import Jobs

log = get_logger(__name__)
FINAL_STATES = {jobstate.TO_PROTO[s] for s in jobstate.FINAL}
T = TypeVar("T")


class StoreStoppingError(RequestError):
    """The store replica is stopping: a stream that would not end by itself is ended at once."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("the store is stopping; call again (after_seq resumes a watch)")


class UntilClosing(Generic[T]):
    """A client stream's ``items`` until the replica starts stopping. The iteration then ends as if the
    client had ended the stream, so the writes of what was received finish; :meth:`raise_if_stopped`,
    called after them, raises :class:`StoreStoppingError` (the client calls again and loses nothing)."""

    def __init__(self, items: AsyncIterator[T], closing: asyncio.Event) -> None:
        self.stopped = False
        self._items = items
        self._closing = closing

    async def __aiter__(self) -> AsyncIterator[T]:
        closing = asyncio.ensure_future(self._closing.wait())
        item: asyncio.Future[T] | None = None
        try:
            while True:
                item = asyncio.ensure_future(anext(self._items))
                await asyncio.wait({item, closing}, return_when=asyncio.FIRST_COMPLETED)
                if not item.done():
                    self.stopped = True
                    return
                try:
                    value = item.result()
                except StopAsyncIteration:
                    return
                item = None
                yield value
        finally:  # also when the consumer closes or is cancelled: no read is left pending
            closing.cancel()
            if item is not None and not item.done():
                item.cancel()
                await asyncio.gather(item, return_exceptions=True)

    def raise_if_stopped(self) -> None:
        if self.stopped:
            raise StoreStoppingError


class EventHub:
    """Fans PostgreSQL notifications out to in-process waiters."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._watchers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.jobs_changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self.listening = asyncio.Event()
        self._pending: set[asyncio.Task[None]] = set()  # notify tasks, referenced until they finish
        self.closing = asyncio.Event()  # set when the replica starts stopping

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_loop(), name="store-listen")

    async def close_streams(self) -> None:
        """The replica is stopping (SIGTERM): end at once the streams that only end with their job (watches,
        long-polling claims, the workers' write streams), so that its drain is not the whole grace period;
        their clients call again (another replica, or this one restarted) and lose nothing."""
        self.closing.set()
        self._wake(None)
        await self._notify_jobs()

    def until_closing(self, items: AsyncIterator[T]) -> UntilClosing[T]:
        """``items`` until the replica starts stopping (:class:`UntilClosing`)."""
        return UntilClosing(items, self.closing)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    def subscribe(self, job_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._watchers[job_id].add(event)
        return event

    def unsubscribe(self, job_id: str, event: asyncio.Event) -> None:
        watchers = self._watchers.get(job_id)
        if watchers is not None:
            watchers.discard(event)
            if not watchers:
                del self._watchers[job_id]

    def _wake(self, job_id: str | None) -> None:
        targets = self._watchers.values() if job_id is None else [self._watchers.get(job_id, set())]
        for events in targets:
            for event in events:
                event.set()

    async def _notify_jobs(self) -> None:
        async with self.jobs_changed:
            self.jobs_changed.notify_all()

    def _on_notify(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        if channel == JOB_EVENTS_CHANNEL:
            self._wake(str(payload))
        else:
            task = asyncio.get_running_loop().create_task(self._notify_jobs())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _listen_loop(self) -> None:
        """Hold the LISTEN connection: (re)connect with the runtime's reconnect policy, listen until the
        connection is lost, and again."""
        await self.db.wait_connected()
        policy = reconnect(self.db.settings.db_retry_max_seconds)
        while True:
            async for attempt in policy.retries(TRANSIENT_ERRORS, report=self._cannot_connect):
                with attempt:
                    lost = await self._listen()
            log.info("listening for job events")
            # anything that happened while we were not listening: let every watcher re-read its log
            self._wake(None)
            await self._notify_jobs()
            await lost.wait()
            log.warning("job event listener connection lost; reconnecting")
            self.listening.clear()
            self._wake(None)

    async def _listen(self) -> asyncio.Event:
        """Open the LISTEN connection; the event is set when it is lost."""
        lost = asyncio.Event()
        conn = await asyncpg.connect(
            self.db.settings.database_url.get_secret_value(),
            timeout=self.db.settings.db_connect_timeout_seconds,
        )
        self._conn = conn
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(JOB_EVENTS_CHANNEL, self._on_notify)
            await conn.add_listener(JOBS_CHANNEL, self._on_notify)
        except BaseException:
            conn.terminate()  # half set up: the next attempt opens a new one
            raise
        self.listening.set()
        return lost

    def _cannot_connect(self, retry: Retry) -> None:
        log.warning(
            "job event listener cannot connect", error=str(retry.cause), retry_in_seconds=round(retry.wait, 2)
        )
        self.listening.clear()
        self._wake(None)


async def watch(
    hub: EventHub, jobs: Jobs, job_id: uuid.UUID, heartbeat: float, after_seq: int = 0
) -> AsyncIterator[store_pb2.WatchJobResponse]:
    """The WatchJob stream: snapshot first, then every event in order, heartbeats while idle.

    With ``after_seq`` (a client resuming a lost stream), the events after that sequence number instead
    of the snapshot; a job that has ended with none left sends its final snapshot.
    """
    key = str(job_id)
    wake = hub.subscribe(key)  # before reading the snapshot, so nothing can slip in between
    try:
        job, last_seq = await jobs.get_with_seq(job_id)
        final = job.state in FINAL_STATES
        if 0 < after_seq <= last_seq:
            last_seq = after_seq
            wake.set()  # read the log at once
        else:
            yield store_pb2.WatchJobResponse(sequence=0, snapshot=job)
            if final:
                return
        while True:
            if hub.closing.is_set():
                raise StoreStoppingError
            try:
                await asyncio.wait_for(wake.wait(), heartbeat)
            except TimeoutError:
                yield store_pb2.WatchJobResponse(heartbeat=True)
                # fall through and re-read: a heartbeat round also covers a missed notification
            if hub.closing.is_set():
                raise StoreStoppingError  # the client resumes after the last event it got
            wake.clear()
            try:
                rows = await hub.db.pool.fetch(
                    "SELECT seq, event FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq",
                    job_id,
                    last_seq,
                )
            except TRANSIENT_ERRORS as exc:
                log.warning("watch: cannot read events; will retry", job_id=key, error=str(exc))
                continue
            for row in rows:
                event = store_pb2.WatchJobResponse.FromString(row["event"])
                last_seq = row["seq"]
                yield event
                if event.WhichOneof("event") == "snapshot" and event.snapshot.state in FINAL_STATES:
                    return
            if final:  # resumed on an ended job whose final snapshot the client has already seen
                yield store_pb2.WatchJobResponse(sequence=0, snapshot=job)
                return
    finally:
        hub.unsubscribe(key, wake)
