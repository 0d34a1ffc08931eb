"""Lease fencing of a job run's writes: a PutArticles or PutStories message that carries a lease token is
written only while that lease is the job's live lease.

A job attempt may outlive its lease: its task was abandoned when it ignored a cancellation, or its worker
stalled past the lease and another replica now runs the job. Such a late write must not add or change
data of a job that moved on (a DONE job, whose stories are exactly its final clustering's; a handed-over
attempt, whose recorded articles were dropped). The check locks the job row in the write's own
transaction, before any other row, so a fenced write and an UpdateJob that ends, releases or re-claims
the job (which lock the row FOR UPDATE first) happen one after the other, never interleaved.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from services.store import jobstate
from services.store.database import Conn

#: the job rows a fenced write locks, in id order (concurrent writes cannot deadlock). NO KEY UPDATE, not
#: SHARE: a SHARE lock is granted past a waiting FOR UPDATE while another SHARE holds the row (checked on
#: PostgreSQL 15), so a job's overlapping article batches could starve its UpdateJob (a lease renewal
#: past its deadline fails the attempt); NO KEY UPDATE queues behind it, and the stories' transaction
#: updates the row anyway. The cost: a job's fenced batches are written one at a time.
LOCK = "SELECT id, state, lease_token FROM jobs WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE"


def holds(row: Any, lease: str) -> bool:
    """True when ``lease`` is the live lease of the job ``row``: not ended (an ended job keeps the token of
    its last attempt), not given back (a release clears the token), not claimed again (a claim sets a
    new one). A lease that ran out but whose job nobody claimed yet is still live, as for UpdateJob. A job
    without a lease has no live lease (no token matches a NULL, not even the text "None")."""
    live = row["lease_token"]
    return row["state"] not in jobstate.FINAL and live is not None and str(live) == lease


async def lock_jobs(conn: Conn, job_ids: Collection[uuid.UUID], lease: str) -> dict[uuid.UUID, bool]:
    """The jobs of ``job_ids`` that exist, each with whether the write may go on for it. With a ``lease``
    their rows are locked (in id order, so that concurrent writes cannot deadlock) until the transaction
    ends, and a job is writable only under its live lease; without one (an unfenced write) every existing
    job is writable and nothing is locked."""
    if not lease:
        rows = await conn.fetch("SELECT id FROM jobs WHERE id = ANY($1)", list(job_ids))
        return {r["id"]: True for r in rows}
    rows = await conn.fetch(LOCK, sorted(job_ids))
    return {r["id"]: holds(r, lease) for r in rows}


def lease_lost_reason(lease: str) -> str:
    """The reason of every item a fenced write refused (the token is shortened: it is a credential)."""
    return f"lease {lease[:8]} is not the job's live lease: the job was re-claimed or has ended"
