"""Jobs: submit, read, cancel, claim under a lease, update; every change appends to the job's event log."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import propagate
from storywire.v1 import common_pb2, store_pb2

from runtime.telemetry import current_trace_id
from services.store import jobstate
from services.store.convert import (
    STAGE_NAMES,
    close_stages,
    decode_cursor,
    encode_cursor,
    job_to_proto,
    page_size,
    stage_to_json,
    stages_of,
)
from services.store.database import Conn, Database, required
from services.store.validation import parse_uuid, validate_spec

JOB_EVENTS_CHANNEL = "storywire_job_events"
JOBS_CHANNEL = "storywire_jobs"


def current_trace() -> tuple[str, str]:
    """(trace id, W3C traceparent) of the current span: the job's trace starts at its submission."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return current_trace_id(), carrier.get("traceparent", "")


class NotFoundError(LookupError):
    """No such job or story."""


class PreconditionError(ValueError):
    """The request conflicts with the job's state (final already, lease lost, bad transition)."""


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


async def _retire_stale_stories(
    conn: Conn, job_id: uuid.UUID, keep: list[str], stages: dict[str, Any]
) -> dict[str, Any]:
    """Delete the job's stories whose cluster key the final attempt did not produce; return the store
    stage's counters recounted."""
    await conn.execute("DELETE FROM stories WHERE job_id = $1 AND NOT (cluster_key = ANY($2))", job_id, keep)
    done, failed = await story_counts(conn, job_id)
    store = dict(stages.get("store", {}))
    store.update(done=done, failed=failed, total=done)
    return store


class Jobs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def submit(self, spec: common_pb2.JobSpec, idempotency_key: str) -> common_pb2.Job:
        validate_spec(spec)
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                """INSERT INTO jobs (id, idempotency_key, name, spec, state, trace_id, traceparent)
                   VALUES ($1, $2, $3, $4, 'queued', $5, $6)
                   ON CONFLICT (idempotency_key) DO NOTHING
                   RETURNING *""",
                uuid.uuid4(),
                idempotency_key or None,
                spec.name,
                spec.SerializeToString(),
                *current_trace(),
            )
            if row is None:  # same idempotency key as an earlier submission
                existing = await conn.fetchrow(
                    "SELECT * FROM jobs WHERE idempotency_key = $1", idempotency_key
                )
                return job_to_proto(required(existing))
            job = job_to_proto(row)
            await append_events(conn, row["id"], [snapshot_event(job)])
            await conn.execute("SELECT pg_notify($1, $2)", JOBS_CHANNEL, job.id)
            return job

    async def get(self, job_id: str) -> common_pb2.Job:
        row = await self.db.pool.fetchrow("SELECT * FROM jobs WHERE id = $1", parse_uuid(job_id, "job_id"))
        if row is None:
            raise NotFoundError(f"job {job_id} not found")
        return job_to_proto(row)

    async def get_with_seq(self, job_id: uuid.UUID) -> tuple[common_pb2.Job, int]:
        row = await self.db.pool.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} not found")
        return job_to_proto(row), int(row["event_seq"])

    async def list(
        self, size: int, token: str, states: Sequence[common_pb2.JobState.ValueType]
    ) -> tuple[list[common_pb2.Job], str]:
        limit = page_size(size)
        names = [jobstate.state_name(s) for s in states] or list(jobstate.TO_PROTO)
        args: list[Any] = [names, limit + 1]
        where = "state = ANY($1)"
        if token:
            created, key = decode_cursor(token)
            where += " AND (created_at, id) < ($3, $4)"
            args += [created, uuid.UUID(key)]
        rows = await self.db.pool.fetch(
            f"SELECT * FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT $2",  # noqa: S608
            *args,
        )
        jobs = [job_to_proto(r) for r in rows[:limit]]
        next_token = (
            encode_cursor(rows[limit - 1]["created_at"], str(rows[limit - 1]["id"]))
            if len(rows) > limit
            else ""
        )
        return jobs, next_token

    async def cancel(self, job_id: str, reason: str) -> common_pb2.Job:
        jid = parse_uuid(job_id, "job_id")
        async with self.db.transaction() as conn:
            row = await conn.fetchrow("SELECT state, stages FROM jobs WHERE id = $1 FOR UPDATE", jid)
            if row is None:
                raise NotFoundError(f"job {job_id} not found")
            if row["state"] in jobstate.FINAL:
                raise PreconditionError(f"job {job_id} is already {row['state']}")
            updated = await conn.fetchrow(
                """UPDATE jobs SET state = 'cancelled', cancel_requested = true, error = $2,
                          finished_at = now(), updated_at = now(), stages = $3::jsonb,
                          lease_token = NULL, lease_expires_at = NULL
                   WHERE id = $1 RETURNING *""",
                jid,
                reason or "cancelled by request",
                json.dumps(close_stages(stages_of(row), await conn.fetchval("SELECT now()"))),
            )
            job = job_to_proto(required(updated))
            await append_events(conn, jid, [snapshot_event(job)])
            return job

    async def claim(self, worker_id: str, lease_seconds: float) -> tuple[common_pb2.Job, str] | None:
        """Claim the oldest runnable job. A claim starts a new attempt: the job (re)starts at ``fetching``,
        which is the only way a job moves backwards (jobstate.RESTART documents it)."""
        token = uuid.uuid4()
        row = await self.db.pool.fetchrow(
            """WITH candidate AS (
                   SELECT id FROM jobs
                   WHERE state NOT IN ('done', 'failed', 'cancelled') AND NOT cancel_requested
                     AND (lease_expires_at IS NULL OR lease_expires_at < now())
                   ORDER BY created_at
                   FOR UPDATE SKIP LOCKED
                   LIMIT 1)
               UPDATE jobs j SET state = $4, lease_token = $1, lease_owner = $2, lease_seconds = $3,
                      lease_expires_at = now() + make_interval(secs => $3), attempts = attempts + 1,
                      started_at = coalesce(started_at, now()), updated_at = now()
               FROM candidate WHERE j.id = candidate.id
               RETURNING j.*""",
            token,
            worker_id,
            lease_seconds,
            jobstate.RESTART,
        )
        if row is None:
            return None
        job = job_to_proto(row)
        async with self.db.transaction() as conn:
            await append_events(conn, row["id"], [snapshot_event(job)])
        return job, str(token)

    async def next_lease_expiry(self) -> dt.datetime | None:
        value: dt.datetime | None = await self.db.pool.fetchval(
            """SELECT min(lease_expires_at) FROM jobs
               WHERE state NOT IN ('done', 'failed', 'cancelled') AND NOT cancel_requested"""
        )
        return value

    async def update(self, req: store_pb2.UpdateJobRequest) -> tuple[common_pb2.Job, bool]:
        jid = parse_uuid(req.job_id, "job_id")
        async with self.db.transaction() as conn:
            row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1 FOR UPDATE", jid)
            if row is None:
                raise NotFoundError(f"job {req.job_id} not found")
            if row["state"] == jobstate.CANCELLED or row["cancel_requested"]:
                return job_to_proto(row), True
            if row["state"] in jobstate.FINAL:
                raise PreconditionError(f"job {req.job_id} is already {row['state']}")
            if str(row["lease_token"]) != req.lease_token:
                raise PreconditionError("lease lost: the job was claimed by another worker (or never by you)")
            target = row["state"]
            if req.state != common_pb2.JOB_STATE_UNSPECIFIED:
                target = jobstate.state_name(req.state)
                try:
                    jobstate.check_transition(row["state"], target)
                except jobstate.TransitionError as exc:
                    raise PreconditionError(str(exc)) from None
            stages = stages_of(row)
            events: list[store_pb2.WatchJobResponse] = []
            for progress in req.stages:
                name = STAGE_NAMES.get(progress.stage)
                if name is None:
                    raise PreconditionError(f"stage {progress.stage} is not a valid stage")
                stages[name] = stage_to_json(progress, stages.get(name, {}))
            final = target in jobstate.FINAL
            if target == jobstate.DONE and req.final_cluster_keys:
                stages["store"] = await _retire_stale_stories(conn, jid, list(req.final_cluster_keys), stages)
            if final:  # at the transaction's now(), the job's finished_at
                stages = close_stages(stages, await conn.fetchval("SELECT now()"))
            updated = await conn.fetchrow(
                """UPDATE jobs SET state = $2, stages = $3::jsonb, totals = coalesce($4, totals),
                          error = CASE WHEN $5 = '' THEN error ELSE $5 END,
                          trace_id = CASE WHEN $6 = '' THEN trace_id ELSE $6 END,
                          lease_expires_at = CASE WHEN $7 THEN NULL
                                                  ELSE now() + make_interval(secs => lease_seconds) END,
                          finished_at = CASE WHEN $7 THEN now() ELSE finished_at END,
                          updated_at = now()
                   WHERE id = $1 RETURNING *""",
                jid,
                target,
                json.dumps(stages),
                req.totals.SerializeToString() if req.HasField("totals") else None,
                req.error,
                req.trace_id,
                final,
            )
            job = job_to_proto(required(updated))
            by_stage = {p.stage: p for p in job.stages}
            events += [store_pb2.WatchJobResponse(progress=by_stage[p.stage]) for p in req.stages]
            events += [store_pb2.WatchJobResponse(warning=w) for w in req.warnings]
            if target != row["state"]:
                events.append(snapshot_event(job))
            await append_events(conn, jid, events)
            return job, False
