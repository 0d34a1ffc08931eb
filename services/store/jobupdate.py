"""UpdateJob, in steps that each do one thing, all inside the transaction that locks the job row:
check the lease, pick the target state, merge stage counters, retire stories, check the accounting of a
finished job, write the row, append the events. A release (the worker gives the job back) is its own
short path."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from storywire.v1 import common_pb2, store_pb2

from runtime.logging import get_logger
from runtime.stages import STAGE_NAMES
from services.store import accounting, jobstate
from services.store.convert import close_stages, job_to_proto, stage_to_json, stages_of
from services.store.database import Conn, required
from services.store.joblog import JOBS_CHANNEL, append_events, snapshot_event, story_counts

log = get_logger(__name__)
Row = Any  # asyncpg.Record


class NotFoundError(LookupError):
    """No such job or story."""


class PreconditionError(ValueError):
    """The request conflicts with the job's state (final already, lease lost, bad transition)."""


@dataclass
class Change:
    """What one UpdateJob makes of the locked row."""

    target: str
    stages: dict[str, Any]
    error: str
    retired: list[store_pb2.StoryRetiredEvent] = field(default_factory=list)
    accounting: common_pb2.JobAccounting | None = None


async def lock_job(conn: Conn, job_id: uuid.UUID) -> Row:
    row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1 FOR UPDATE", job_id)
    if row is None:
        raise NotFoundError(f"job {job_id} not found")
    return row


def check_owner(row: Row, req: store_pb2.UpdateJobRequest) -> bool:
    """True when the job was cancelled (the worker must stop); raises when the caller may not update it."""
    if row["state"] == jobstate.CANCELLED or row["cancel_requested"]:
        return True
    if row["state"] in jobstate.FINAL:
        raise PreconditionError(f"job {req.job_id} is already {row['state']}")
    if row["lease_token"] is None or str(row["lease_token"]) != req.lease_token:
        raise PreconditionError("lease lost: the job was claimed by another worker (or never by you)")
    return False


def target_state(row: Row, req: store_pb2.UpdateJobRequest) -> str:
    if req.state == common_pb2.JOB_STATE_UNSPECIFIED:
        return str(row["state"])
    try:
        target = jobstate.state_name(req.state)
        jobstate.check_transition(row["state"], target)
    except jobstate.TransitionError as exc:
        raise PreconditionError(str(exc)) from None
    return target


def merge_stages(row: Row, reported: list[common_pb2.StageProgress]) -> dict[str, Any]:
    stages = stages_of(row)
    for progress in reported:
        name = STAGE_NAMES.get(progress.stage)
        if name is None:
            raise PreconditionError(f"stage {progress.stage} is not a valid stage")
        stages[name] = stage_to_json(progress, stages.get(name, {}))
    return stages


async def retire_stories(
    conn: Conn, job_id: uuid.UUID, where: str, arg: list[str], replaced_by: dict[str, list[str]]
) -> list[store_pb2.StoryRetiredEvent]:
    """Delete the job's stories matching ``where`` (over cluster_key and $2); one event per story."""
    rows = await conn.fetch(
        f"DELETE FROM stories WHERE job_id = $1 AND {where} RETURNING id, cluster_key",  # noqa: S608
        job_id,
        arg,
    )
    return [
        store_pb2.StoryRetiredEvent(
            story_id=r["id"], cluster_key=r["cluster_key"], replaced_by=replaced_by.get(r["cluster_key"], [])
        )
        for r in sorted(rows, key=lambda r: r["cluster_key"])
    ]


async def recount_store_stage(conn: Conn, job_id: uuid.UUID, stages: dict[str, Any]) -> None:
    done, failed = await story_counts(conn, job_id)
    store = dict(stages.get("store", {}))
    store.update(done=done, failed=failed, total=done)
    stages["store"] = store


async def plan_change(conn: Conn, row: Row, req: store_pb2.UpdateJobRequest) -> Change:
    job_id: uuid.UUID = row["id"]
    change = Change(target_state(row, req), merge_stages(row, list(req.stages)), req.error)
    if req.retired:
        replaced = {r.cluster_key: list(r.replaced_by) for r in req.retired}
        change.retired += await retire_stories(
            conn, job_id, "cluster_key = ANY($2)", list(replaced), replaced
        )
    if change.target == jobstate.DONE and req.final_cluster_keys:
        # stories of an earlier attempt (or provisional ones) that the final clustering did not produce
        change.retired += await retire_stories(
            conn, job_id, "NOT (cluster_key = ANY($2))", list(req.final_cluster_keys), {}
        )
    if change.retired:
        await recount_store_stage(conn, job_id, change.stages)
    if change.target == jobstate.DONE:
        await check_accounting(conn, row, req, change)
    return change


async def check_accounting(conn: Conn, row: Row, req: store_pb2.UpdateJobRequest, change: Change) -> None:
    """A job is DONE only when its entries add up; otherwise it fails, loudly, with the mismatch."""
    retired = int(row["retired_stories"]) + len(change.retired)
    change.accounting = await accounting.check(
        conn, row["id"], int(row["attempts"]),
        entries_found=req.entries_found, left_out=list(req.left_out), retired_stories=retired,
    )  # fmt: skip
    if not change.accounting.balanced:
        change.target = jobstate.FAILED
        change.error = f"accounting does not add up: {change.accounting.mismatch}"
        log.error("job refused as done: its accounting does not add up", job_id=str(row["id"]),
                  mismatch=change.accounting.mismatch)  # fmt: skip


async def write_change(conn: Conn, row: Row, req: store_pb2.UpdateJobRequest, change: Change) -> Row:
    final = change.target in jobstate.FINAL
    stages = change.stages
    if final:  # a job that ends ends its stages, at the transaction's now() (the job's finished_at)
        stages = close_stages(stages, await conn.fetchval("SELECT now()"))
    return required(
        await conn.fetchrow(
            """UPDATE jobs SET state = $2, stages = $3::jsonb, totals = coalesce($4, totals),
                      error = CASE WHEN $5 = '' THEN error ELSE $5 END,
                      trace_id = CASE WHEN $6 = '' THEN trace_id ELSE $6 END,
                      lease_expires_at = CASE WHEN $7 THEN NULL
                                              ELSE now() + make_interval(secs => lease_seconds) END,
                      finished_at = CASE WHEN $7 THEN now() ELSE finished_at END,
                      accounting = coalesce($8, accounting),
                      retired_stories = retired_stories + $9,
                      updated_at = now()
               WHERE id = $1 RETURNING *""",
            row["id"],
            change.target,
            json.dumps(stages),
            req.totals.SerializeToString() if req.HasField("totals") else None,
            change.error,
            req.trace_id,
            final,
            change.accounting.SerializeToString() if change.accounting is not None else None,
            len(change.retired),
        )
    )


def change_events(
    previous: Row, job: common_pb2.Job, req: store_pb2.UpdateJobRequest, change: Change
) -> list[store_pb2.WatchJobResponse]:
    by_stage = {p.stage: p for p in job.stages}
    events = [store_pb2.WatchJobResponse(progress=by_stage[p.stage]) for p in req.stages]
    events += [store_pb2.WatchJobResponse(retired=r) for r in change.retired]
    if change.retired and common_pb2.STAGE_STORE in by_stage:
        events.append(store_pb2.WatchJobResponse(progress=by_stage[common_pb2.STAGE_STORE]))
    events += [store_pb2.WatchJobResponse(warning=w) for w in req.warnings]
    if change.target != previous["state"]:
        events.append(snapshot_event(job))
    return events


async def update(
    conn: Conn, job_id: uuid.UUID, req: store_pb2.UpdateJobRequest
) -> tuple[common_pb2.Job, bool]:
    row = await lock_job(conn, job_id)
    if check_owner(row, req):
        return job_to_proto(row), True
    if req.release:
        return await release(conn, row, req), False
    change = await plan_change(conn, row, req)
    job = job_to_proto(await write_change(conn, row, req, change))
    await append_events(conn, job_id, change_events(row, job, req, change))
    return job, False


async def release(conn: Conn, row: Row, req: store_pb2.UpdateJobRequest) -> common_pb2.Job:
    """Give the job back: queued again with its progress, no lease, claimable after ``retry_after``. A
    handover (the worker is stopping) does not count as an attempt: ``attempts`` goes back down, so the
    next claim reuses the attempt number, and the articles the handed-over attempt recorded are dropped
    (the next attempt records its own)."""
    stages = merge_stages(row, list(req.stages))
    delay = max(req.retry_after.ToTimedelta().total_seconds(), 0.0)
    if req.handover:
        await conn.execute(
            "DELETE FROM job_articles WHERE job_id = $1 AND attempt = $2", row["id"], row["attempts"]
        )
    updated = required(
        await conn.fetchrow(
            """UPDATE jobs SET state = $2, stages = $3::jsonb, totals = coalesce($4, totals),
                      lease_token = NULL, lease_expires_at = now() + make_interval(secs => $5),
                      attempts = CASE WHEN $6 THEN greatest(attempts - 1, 0) ELSE attempts END,
                      updated_at = now()
               WHERE id = $1 RETURNING *""",
            row["id"],
            jobstate.RELEASED,
            json.dumps(stages),
            req.totals.SerializeToString() if req.HasField("totals") else None,
            delay,
            req.handover,
        )
    )
    job = job_to_proto(updated)
    warnings = list(req.warnings)
    if req.error:
        warnings.append(f"attempt {row['attempts']} gave the job back: {req.error}")
    events = [store_pb2.WatchJobResponse(warning=w) for w in warnings]
    await append_events(conn, row["id"], [*events, snapshot_event(job)])
    await conn.execute("SELECT pg_notify($1, $2)", JOBS_CHANNEL, job.id)
    return job
