"""The job event log: append events in the transaction that made the change, and the store stage's
counters that story writes and retirements recount."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp
from storywire.v1 import common_pb2, store_pb2

from services.store.database import Conn, required

JOB_EVENTS_CHANNEL = "storywire_job_events"
JOBS_CHANNEL = "storywire_jobs"


def now_ts() -> Timestamp:
    out = Timestamp()
    out.GetCurrentTime()
    return out


async def append_events(conn: Conn, job_id: uuid.UUID, events: Sequence[store_pb2.WatchJobResponse]) -> None:
    """Append events to the job's log with consecutive sequence numbers and notify watchers on commit.

    Must run inside the transaction that made the change, so an event exists exactly when its change does.
    """
    if not events:
        return
    last = await conn.fetchval(
        "UPDATE jobs SET event_seq = event_seq + $2 WHERE id = $1 RETURNING event_seq", job_id, len(events)
    )
    first = last - len(events) + 1
    stamp = now_ts()
    rows = []
    for offset, event in enumerate(events):
        event.sequence = first + offset
        event.time.CopyFrom(stamp)
        rows.append((job_id, event.sequence, event.SerializeToString()))
    await conn.executemany("INSERT INTO job_events (job_id, seq, event) VALUES ($1, $2, $3)", rows)
    await conn.execute("SELECT pg_notify($1, $2)", JOB_EVENTS_CHANNEL, str(job_id))


def snapshot_event(job: common_pb2.Job) -> store_pb2.WatchJobResponse:
    return store_pb2.WatchJobResponse(snapshot=job)


async def story_counts(conn: Conn, job_id: uuid.UUID) -> tuple[int, int]:
    """(stories stored, of which fallbacks) for a job: the store stage's counters."""
    row = required(
        await conn.fetchrow(
            """SELECT count(*) AS done, count(*) FILTER (WHERE fallback) AS failed
               FROM stories WHERE job_id = $1""",
            job_id,
        )
    )
    return int(row["done"]), int(row["failed"])
