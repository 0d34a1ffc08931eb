"""Rich tables and JSON for jobs, stories and the per-stage timing table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from storywire.v1 import common_pb2

from runtime.stages import STAGE_NAMES

STATE = {v: k.removeprefix("JOB_STATE_").lower() for k, v in common_pb2.JobState.items()}


def seconds(d: Any) -> float:
    value: float = d.ToTimedelta().total_seconds()
    return value


def job_wall(job: common_pb2.Job) -> float:
    if job.HasField("finished_at") and job.HasField("started_at"):
        return (job.finished_at.ToDatetime() - job.started_at.ToDatetime()).total_seconds()
    return max((seconds(s.elapsed) for s in job.stages), default=0.0)


def timing_table(job: common_pb2.Job) -> Table:
    """Per stage: wall time, share of the job's wall time, and the LLM figures on the synthesize row."""
    total = job_wall(job) or 1e-9
    t = job.totals
    table = Table(title=f"Job {job.id} - {STATE[job.state]} in {total:.2f} s")
    for column in (
        "stage",
        "wall s",
        "share",
        "done/total",
        "failed",
        "LLM calls",
        "cache hits",
        "tokens",
        "fallbacks",
    ):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in job.stages:
        wall = seconds(stage.elapsed)
        llm = stage.stage == common_pb2.STAGE_SYNTHESIZE
        tokens = t.usage.prompt_tokens + t.usage.completion_tokens
        name = STAGE_NAMES.get(stage.stage, "?")
        table.add_row(
            name, f"{wall:.3f}", f"{wall / total:.0%}", f"{stage.done}/{stage.total}",
            str(stage.failed), str(t.llm_calls) if llm else "", str(t.cache_hits) if llm else "",
            f"{tokens}{'~' if t.usage.estimated else ''}" if llm else "", str(t.fallbacks) if llm else "",
        )  # fmt: skip
    saved = t.saved.prompt_tokens + t.saved.completion_tokens
    table.caption = (
        f"stages overlap (pipelined), so shares can add up to more than 100%; "
        f"tokens saved by cache: {saved}; "
        f"grounding rejections: {t.grounding_rejections}{_reasons(t)}; trace id: {job.trace_id or '-'}"
    )
    if job.HasField("accounting"):
        table.caption += "\n" + accounting_line(job.accounting)
    return table


REASONS = {
    v: k.removeprefix("LEFT_OUT_REASON_").lower().replace("_", " ")
    for k, v in common_pb2.LeftOutReason.items()
}


def accounting_line(a: common_pb2.JobAccounting) -> str:
    """entries found = in stories + left out, per reason (every reason, zeros included)."""
    left = sum(c.entries for c in a.left_out)
    reasons = ", ".join(f"{REASONS[c.reason]} {c.entries}" for c in a.left_out)
    noun = "story" if a.retired_stories == 1 else "stories"
    retired = f"; {a.retired_stories} provisional {noun} retired" if a.retired_stories else ""
    verdict = "adds up" if a.balanced else f"DOES NOT ADD UP: {a.mismatch}"
    found = f"accounting: {a.entries_found} entries found = {a.in_stories} in {a.stories} stories"
    return f"{found} + {left} left out ({reasons}){retired}; {verdict}"


def _reasons(t: common_pb2.SynthesisTotals) -> str:
    """ " (format 2, invented_name 5)": rejected answers by reason, most frequent first."""
    if not t.rejection_reasons:
        return ""
    ranked = sorted(t.rejection_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return " (" + ", ".join(f"{k} {v}" for k, v in ranked) + ")"


def stories_table(stories: list[common_pb2.Story]) -> Table:
    table = Table(title=f"{len(stories)} stories")
    for column in ("story id", "title", "articles", "model", "source"):
        table.add_column(column, no_wrap=column == "story id")
    for s in stories:
        source = "fallback: " + s.fallback_reason[:40] if s.fallback else ("cache" if s.cache_hit else "LLM")
        table.add_row(s.id, s.title, str(len(s.article_ids)), s.model, source)
    return table


def jobs_table(jobs: list[common_pb2.Job]) -> Table:
    table = Table(title="jobs")
    for column in ("id", "state", "name", "urls", "created", "stories"):
        table.add_column(column)
    for j in jobs:
        stored = next((s.done for s in j.stages if s.stage == common_pb2.STAGE_STORE), 0)
        created = j.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(j.id, STATE[j.state], j.spec.name, str(len(j.spec.urls)), created, str(stored))
    return table


def print_story(console: Console, story: common_pb2.Story, articles: list[common_pb2.Article]) -> None:
    console.print(f"[bold]{story.title}[/bold]")
    console.print(story.summary)
    label = f"fallback ({story.fallback_reason})" if story.fallback else story.model
    console.print(f"[dim]{label}; {len(story.article_ids)} articles; story {story.id}[/dim]")
    for a in articles:
        console.print(f"  - {a.title} [dim]{a.url}[/dim]")
