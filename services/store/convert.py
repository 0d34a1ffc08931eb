"""Database rows to protobuf messages and back."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import asyncpg
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from storywire.v1 import common_pb2

from runtime.stages import STAGE_NAMES, STAGE_VALUES
from services.store import jobstate
from services.store.validation import InvalidArgumentError

Row = asyncpg.Record


def ts(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def from_ts(value: Timestamp) -> dt.datetime | None:
    """Timestamp to an aware datetime (unset = None); plain arithmetic, much faster than ToDatetime."""
    seconds, nanos = value.seconds, value.nanos
    if seconds == 0 and nanos == 0:
        return None
    return EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)


def _iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def stage_progress(name: str, data: Mapping[str, Any], now: dt.datetime) -> common_pb2.StageProgress:
    started = _iso(data.get("started_at"))
    finished = _iso(data.get("finished_at"))
    out = common_pb2.StageProgress(
        stage=STAGE_VALUES[name],
        done=int(data.get("done", 0)),
        total=int(data.get("total", 0)),
        failed=int(data.get("failed", 0)),
    )
    if started:
        out.started_at.FromDatetime(started)
        out.elapsed.FromTimedelta((finished or now) - started)
    if finished:
        out.finished_at.FromDatetime(finished)
    return out


def stage_to_json(progress: common_pb2.StageProgress, previous: Mapping[str, Any]) -> dict[str, Any]:
    """Merge reported counters into the stored ones; times default to the first/last report."""
    out = dict(previous)
    out.update(done=progress.done, total=progress.total, failed=progress.failed)
    started = from_ts(progress.started_at)
    finished = from_ts(progress.finished_at)
    if started or "started_at" not in out:
        out["started_at"] = (started or dt.datetime.now(dt.UTC)).isoformat()
    if finished:
        out["finished_at"] = finished.isoformat()
    return out


def close_stages(stages: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    """A job that ends at ``at`` ends its stages: each started one without a finished time gets ``at``
    (the store stage, counted by the store as stories arrive, has no other moment that marks its end)."""
    return {
        name: {**data, "finished_at": at.isoformat()}
        if data.get("started_at") and not data.get("finished_at")
        else data
        for name, data in stages.items()
    }


def stages_of(row: Row) -> dict[str, Any]:
    """A job row's stage counters (asyncpg returns jsonb as text unless a codec is set)."""
    value = row["stages"]
    stages: dict[str, Any] = json.loads(value) if isinstance(value, str) else dict(value or {})
    return stages


def job_to_proto(row: Row) -> common_pb2.Job:
    now = dt.datetime.now(dt.UTC)
    spec = common_pb2.JobSpec.FromString(row["spec"])
    stages = stages_of(row)
    job = common_pb2.Job(
        id=str(row["id"]),
        spec=spec,
        state=jobstate.TO_PROTO[row["state"]],
        error=row["error"],
        trace_id=row["trace_id"],
        traceparent=row["traceparent"],
        attempts=row["attempts"],
        stages=[stage_progress(n, stages[n], now) for n in STAGE_NAMES.values() if n in stages],
    )
    if row["totals"]:
        job.totals.ParseFromString(row["totals"])
    if row.get("accounting"):
        job.accounting.ParseFromString(row["accounting"])
    copy_times(job, row, "created_at", "updated_at", "started_at", "finished_at")
    return job


def copy_times(message: Message, row: Row, *fields: str) -> None:
    """Set each timestamp field of ``message`` from the row's column of the same name, unless NULL."""
    for field in fields:
        value = ts(row[field])
        if value is not None:
            getattr(message, field).CopyFrom(value)


def article_to_proto(row: Row) -> common_pb2.Article:
    article = common_pb2.Article(
        id=row["id"],
        url=row["url"],
        canonical_url=row["canonical_url"],
        content_hash=row["content_hash"],
        title=row["title"],
        text=row["body"],
        source_url=row["source_url"],
        author=row["author"],
    )
    copy_times(article, row, "published_at", "fetched_at")
    return article


def story_to_proto(row: Row, article_ids: list[str]) -> common_pb2.Story:
    story = common_pb2.Story(
        id=row["id"],
        job_id=str(row["job_id"]),
        cluster_key=row["cluster_key"],
        title=row["title"],
        summary=row["summary"],
        model=row["model"],
        prompt_version=row["prompt_version"],
        usage=common_pb2.TokenUsage(
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            estimated=row["usage_estimated"],
        ),
        cache_hit=row["cache_hit"],
        cache_tier=row["cache_tier"],
        fallback=row["fallback"],
        fallback_reason=row["fallback_reason"],
        article_ids=article_ids,
        attempts=row["attempts"],
    )
    story.latency.FromMilliseconds(int(row["latency_ms"]))
    copy_times(story, row, "created_at")
    return story


def encode_cursor(created_at: dt.datetime, key: str) -> str:
    raw = json.dumps([created_at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, field: str = "page_token") -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, key = json.loads(raw)
        return dt.datetime.fromisoformat(created), str(key)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(field, "is not a token returned by this service") from exc


def page_size(value: int, field: str = "page_size") -> int:
    if value == 0:
        return 50
    if not 1 <= value <= 1000:
        raise InvalidArgumentError(field, f"{value} is outside [1, 1000]")
    return value
