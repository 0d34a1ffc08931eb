"""Jobs: submit, read, cancel, claim under a lease, update; every change appends to the job's event log."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry import propagate
from storywire.v1 import common_pb2, store_pb2

from runtime.telemetry import current_trace_id
from services.store import jobstate, jobupdate
from services.store.convert import (
    close_stages,
    decode_cursor,
    encode_cursor,
    job_to_proto,
    page_size,
    stages_of,
)
from services.store.database import Conn, Database, required
from services.store.joblog import JOBS_CHANNEL, append_events, snapshot_event
from services.store.jobupdate import NotFoundError, PreconditionError
from services.store.validation import parse_uuid, validate_spec


def current_trace() -> tuple[str, str]:
    """(trace id, W3C traceparent) of the current span: the job's trace starts at its submission."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return current_trace_id(), carrier.get("traceparent", "")


#: runnable jobs (not ended, not being cancelled, no live lease)
RUNNABLE = """state NOT IN ('done', 'failed', 'cancelled') AND NOT cancel_requested
          AND (lease_expires_at IS NULL OR lease_expires_at < now())"""
#: runnable jobs that have had every attempt they may have: failed instead of claimed again
EXHAUSTED = f"""SELECT id, attempts, stages FROM jobs WHERE {RUNNABLE} AND attempts >= $1
    ORDER BY created_at FOR UPDATE SKIP LOCKED"""  # noqa: S608 - constant text
CLAIM = f"""WITH candidate AS (
        SELECT id FROM jobs
        WHERE {RUNNABLE} AND attempts < $5
        ORDER BY created_at
        FOR UPDATE SKIP LOCKED
        LIMIT 1)
    UPDATE jobs j SET state = $4, lease_token = $1, lease_owner = $2, lease_seconds = $3,
           lease_expires_at = now() + make_interval(secs => $3), attempts = attempts + 1,
           started_at = coalesce(started_at, now()), updated_at = now()
    FROM candidate WHERE j.id = candidate.id
    RETURNING j.*"""  # noqa: S608 - constant text


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

    async def claim(
        self, worker_id: str, lease_seconds: float, max_attempts: int
    ) -> tuple[common_pb2.Job, str] | None:
        """Claim the oldest runnable job. A claim starts a new attempt: the job (re)starts at ``fetching``,
        which is the only way a job moves backwards (jobstate.RESTART documents it). A runnable job that
        has had ``max_attempts`` attempts is never handed out again: the same transaction fails it (its
        last worker died, or could not record the failure) with its event."""
        token = uuid.uuid4()
        async with self.db.transaction() as conn:
            await self._fail_exhausted(conn, max_attempts)
            row = await conn.fetchrow(CLAIM, token, worker_id, lease_seconds, jobstate.RESTART, max_attempts)
            if row is None:
                return None
            job = job_to_proto(row)
            await append_events(conn, row["id"], [snapshot_event(job)])  # same transaction as the claim
        return job, str(token)

    async def _fail_exhausted(self, conn: Conn, max_attempts: int) -> None:
        for row in await conn.fetch(EXHAUSTED, max_attempts):
            failed = await conn.fetchrow(
                """UPDATE jobs SET state = 'failed', error = $2, finished_at = now(), updated_at = now(),
                          stages = $3::jsonb, lease_token = NULL, lease_expires_at = NULL
                   WHERE id = $1 RETURNING *""",
                row["id"],
                f"after {row['attempts']} attempts: the last one ended without recording its outcome (its "
                f"worker died or could not reach the store), and a job gets {max_attempts} attempts at most",
                json.dumps(close_stages(stages_of(row), await conn.fetchval("SELECT now()"))),
            )
            job = job_to_proto(required(failed))
            await append_events(conn, row["id"], [snapshot_event(job)])

    async def next_lease_expiry(self) -> dt.datetime | None:
        value: dt.datetime | None = await self.db.pool.fetchval(
            """SELECT min(lease_expires_at) FROM jobs
               WHERE state NOT IN ('done', 'failed', 'cancelled') AND NOT cancel_requested"""
        )
        return value

    async def update(self, req: store_pb2.UpdateJobRequest) -> tuple[common_pb2.Job, bool]:
        """Renew the lease and record progress, a state change, retired stories, or a release; a DONE
        is checked against the job's accounting first (jobupdate.py has the steps)."""
        jid = parse_uuid(req.job_id, "job_id")
        async with self.db.transaction() as conn:
            return await jobupdate.update(conn, jid, req)
