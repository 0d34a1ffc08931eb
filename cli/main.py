"""``storywire``: run URL..., watch JOB, jobs, stories [JOB], show STORY, cache stats; --json for scripts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from opentelemetry import trace
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from storywire.v1 import common_pb2, store_pb2, synthesizer_pb2

from cli.client import CliError, call, store_stub, synth_stub
from cli.render import as_json, jobs_table, print_story, stories_table, timing_table
from runtime.stubs import StoreStub
from runtime.telemetry import flush_telemetry, setup_telemetry

app = typer.Typer(help="storywire: web content in, LLM-written stories out.", no_args_is_help=True)
cache_app = typer.Typer(help="The synthesizer's LLM cache.")
app.add_typer(cache_app, name="cache")
# at least 120 columns when output is not a terminal (make run, CI logs), so tables are not truncated
console = Console(width=None if Console().is_terminal else 120)
FINAL = {common_pb2.JOB_STATE_DONE, common_pb2.JOB_STATE_FAILED, common_pb2.JOB_STATE_CANCELLED}

StoreOpt = Annotated[str, typer.Option(envvar="STORYWIRE_STORE_ADDRESS", help="store service host:port")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def run_async(coro: Coroutine[Any, Any, int]) -> None:
    try:
        code = asyncio.run(coro)
    except CliError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(exc.code) from None
    raise typer.Exit(code)


async def watch_job(store: StoreStub, address: str, job_id: str, quiet: bool) -> common_pb2.Job:
    """Follow WatchJob with a progress bar per stage; returns the final job."""
    labels = {common_pb2.STAGE_FETCH: "fetched", common_pb2.STAGE_CLUSTER: "clustered",
              common_pb2.STAGE_SYNTHESIZE: "synthesized", common_pb2.STAGE_STORE: "stored"}  # fmt: skip
    columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(*columns, console=console, disable=quiet, transient=False)
    bars = {stage: progress.add_task(label, total=None) for stage, label in labels.items()}
    last: common_pb2.Job | None = None

    def show(p: common_pb2.StageProgress, synth_total: int | None = None) -> None:
        total = p.total or None
        if p.stage == common_pb2.STAGE_STORE:
            total = synth_total or total
        progress.update(bars[p.stage], completed=p.done, total=total)

    with progress:
        synth_total = 0
        async for event in store.WatchJob(store_pb2.WatchJobRequest(job_id=job_id)):
            kind = event.WhichOneof("event")
            if kind == "snapshot":
                last = event.snapshot
                for p in last.stages:
                    synth_total = p.total if p.stage == common_pb2.STAGE_SYNTHESIZE else synth_total
                    show(p, synth_total)
            elif kind == "progress":
                if event.progress.stage == common_pb2.STAGE_SYNTHESIZE:
                    synth_total = event.progress.total
                show(event.progress, synth_total)
            elif kind == "warning" and not quiet:
                progress.console.print(f"[yellow]warning:[/yellow] {event.warning}", highlight=False)
    if last is None:
        raise CliError(f"store at {address} sent no state for job {job_id}")
    return last


async def finish(store: StoreStub, address: str, job: common_pb2.Job, as_json_out: bool) -> int:
    job = (await call("store", address, lambda: store.GetJob(store_pb2.GetJobRequest(job_id=job.id)))).job
    reply = await call(
        "store",
        address,
        lambda: store.ListStories(store_pb2.ListStoriesRequest(job_id=job.id, page_size=1000)),
    )
    stories = sorted(reply.stories, key=lambda s: s.title)
    if as_json_out:
        print(as_json(job))
        print(as_json(list(stories)))
    else:
        console.print(stories_table(stories))
        console.print(timing_table(job))
        console.print(f"trace id: {job.trace_id or '-'}  (search it in Jaeger)")
    if job.state == common_pb2.JOB_STATE_FAILED:
        console.print(f"[red]job failed:[/red] {job.error}")
        return 1
    return 0 if job.state == common_pb2.JOB_STATE_DONE else 1


@app.command()
def run(  # noqa: PLR0917 - one parameter per CLI option
    urls: Annotated[list[str], typer.Argument(help="feed or page URLs")],
    store: StoreOpt = "127.0.0.1:50053",
    name: Annotated[str, typer.Option(help="a name for listings")] = "",
    time_window_hours: Annotated[float, typer.Option(help="only articles this recent (0 = all)")] = 0.0,
    min_articles: Annotated[int, typer.Option(help="articles needed for a story (0 = default 2)")] = 0,
    threshold: Annotated[
        float,
        typer.Option(
            help="clustering threshold (0 = the backend default: 0.33 events, 0.3 tfidf, 0.5 embeddings)"
        ),
    ] = 0.0,
    model: Annotated[str, typer.Option(help="LLM model (empty = synthesizer default)")] = "",
    max_concurrency: Annotated[int, typer.Option(help="cap on concurrent LLM calls (0 = adaptive)")] = 0,
    max_articles: Annotated[int, typer.Option(help="stop after this many articles (0 = no limit)")] = 0,
    full_text: Annotated[
        bool, typer.Option(help="read each teaser entry's page for the article's full text")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Submit a job, watch its progress, then print its stories and a per-stage timing table."""
    setup_telemetry("cli", os.environ.get("STORYWIRE_OTLP_ENDPOINT", ""))
    options = common_pb2.JobOptions(
        time_window_hours=time_window_hours,
        min_articles_per_story=min_articles,
        similarity_threshold=threshold,
        model=model,
        max_concurrency=max_concurrency,
        max_articles=max_articles,
        full_text=common_pb2.FULL_TEXT_AUTO if full_text else common_pb2.FULL_TEXT_OFF,
    )
    spec = common_pb2.JobSpec(urls=urls, options=options, name=name)

    async def go() -> int:
        channel, stub = store_stub(store)
        async with channel:
            with trace.get_tracer("storywire.cli").start_as_current_span("storywire.run"):
                submitted = await call(
                    "store", store, lambda: stub.SubmitJob(store_pb2.SubmitJobRequest(spec=spec))
                )
                job = submitted.job
                if not json_out:
                    console.print(f"job {job.id} submitted; trace id {job.trace_id}")
                final = await watch_job(stub, store, job.id, quiet=json_out)
                code = await finish(stub, store, final, json_out)
        await flush_telemetry()
        return code

    run_async(go())


@app.command()
def watch(job_id: str, store: StoreOpt = "127.0.0.1:50053", json_out: JsonOpt = False) -> None:
    """Follow a job until it ends, then print its stories and timing table."""

    async def go() -> int:
        channel, stub = store_stub(store)
        async with channel:
            final = await watch_job(stub, store, job_id, quiet=json_out)
            return await finish(stub, store, final, json_out)

    run_async(go())


@app.command()
def jobs(store: StoreOpt = "127.0.0.1:50053", limit: int = 20, json_out: JsonOpt = False) -> None:
    """List recent jobs."""

    async def go() -> int:
        channel, stub = store_stub(store)
        async with channel:
            reply = await call(
                "store", store, lambda: stub.ListJobs(store_pb2.ListJobsRequest(page_size=limit))
            )
        print(as_json(list(reply.jobs))) if json_out else console.print(jobs_table(list(reply.jobs)))
        return 0

    run_async(go())


@app.command()
def stories(job_id: Annotated[str, typer.Argument()] = "", store: StoreOpt = "127.0.0.1:50053",
            limit: int = 50, json_out: JsonOpt = False) -> None:  # fmt: skip
    """List the stories of a job, or the newest stories of all jobs."""

    async def go() -> int:
        channel, stub = store_stub(store)
        async with channel:
            request = store_pb2.ListStoriesRequest(job_id=job_id, page_size=limit)
            reply = await call("store", store, lambda: stub.ListStories(request))
        print(as_json(list(reply.stories))) if json_out else console.print(stories_table(list(reply.stories)))
        return 0

    run_async(go())


@app.command()
def show(story_id: str, store: StoreOpt = "127.0.0.1:50053", json_out: JsonOpt = False) -> None:
    """One story with its source articles."""

    async def go() -> int:
        channel, stub = store_stub(store)
        async with channel:
            reply = await call(
                "store", store, lambda: stub.GetStory(store_pb2.GetStoryRequest(story_id=story_id))
            )
        if json_out:
            print(as_json(reply))
        else:
            print_story(console, reply.story, list(reply.articles))
        return 0

    run_async(go())


@cache_app.command("stats")
def cache_stats(
    synthesizer: Annotated[str, typer.Option(envvar="STORYWIRE_SYNTHESIZER_ADDRESS")] = "127.0.0.1:50052",
    json_out: JsonOpt = False,
) -> None:
    """Cache hits, misses, bytes and evictions per tier, coalesced calls and the concurrency limit."""

    async def go() -> int:
        channel, stub = synth_stub(synthesizer)
        async with channel:
            request = synthesizer_pb2.GetCacheStatsRequest()
            reply = await call("synthesizer", synthesizer, lambda: stub.GetCacheStats(request))
        if json_out:
            print(as_json(reply))
            return 0
        for t in reply.tiers:
            tier = common_pb2.CacheTier.Name(t.tier).removeprefix("CACHE_TIER_").lower()
            console.print(
                f"{tier:<7} hits={t.hits} misses={t.misses} writes={t.writes} evictions={t.evictions} "
                f"bytes={t.bytes} entries={t.entries} errors={t.errors} available={t.available}"
            )
        console.print(f"coalesced={reply.coalesced} concurrency_limit={reply.concurrency_limit} "
                      f"in_flight={reply.in_flight}")  # fmt: skip
        return 0

    run_async(go())


def main() -> None:
    app(prog_name="storywire")
