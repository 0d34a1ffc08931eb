"""``storywire``: run URL..., watch JOB, cancel JOB, jobs, stories [JOB], show STORY, cache stats; --json
for scripts. Exit codes: 0 done, 1 job failed or cancelled, 2 rejected, 3 unreachable, 130 interrupted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

import grpc
import typer
from opentelemetry import trace
from rich.console import Console
from storywire.v1 import common_pb2, store_pb2, synthesizer_pb2

from cli.client import (
    INTERRUPTED,
    JOB_NOT_DONE,
    REJECTED,
    CliError,
    call,
    rpc_error,
    store_stub,
    synth_stub,
)
from cli.help import Command, Group
from cli.jsondoc import document
from cli.render import STATE, jobs_table, print_story, stories_table, timing_table
from cli.watch import stderr as errors
from cli.watch import watch_job
from runtime.stubs import StoreStub
from runtime.telemetry import flush_telemetry, setup_telemetry

app = typer.Typer(cls=Group, help="storywire: web content in, LLM-written stories out.", no_args_is_help=True)
cache_app = typer.Typer(cls=Group, help="The synthesizer's LLM cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
# at least 120 columns when output is not a terminal (make run, CI logs), so tables are not truncated
console = Console(width=None if Console().is_terminal else 120)

StoreOpt = Annotated[
    str,
    typer.Option(
        envvar="STORYWIRE_STORE_ADDRESS", metavar="HOST:PORT", help="host:port of the store service"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document (see the README)")]
ReconnectOpt = Annotated[
    float,
    typer.Option(
        metavar="SECONDS",
        min=0,
        help="how long to keep reconnecting to a store that went away before giving up (exit 3)",
    ),
]
DEFAULT_STORE = "127.0.0.1:50053"
RECONNECT_FOR = 60.0


def run_async(coro: Coroutine[Any, Any, int]) -> None:
    try:
        code = asyncio.run(coro)
    except CliError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.code) from None
    except KeyboardInterrupt:
        errors.print("interrupted (a job keeps running: `storywire watch JOB` or `storywire cancel JOB`)")
        raise typer.Exit(INTERRUPTED) from None
    raise typer.Exit(code)


def on_store(address: str, work: Callable[[StoreStub], Awaitable[int]]) -> None:
    """Run ``work`` with a stub of the store at ``address`` (its channel closed after), then exit with
    the code it returns."""

    async def go() -> int:
        channel, stub = store_stub(address)
        async with channel:
            return await work(stub)

    run_async(go())


async def finish(store: StoreStub, address: str, job_id: str, as_json: bool) -> int:
    """Print the job's stories and timing table (or one JSON document); the exit code of its outcome."""
    job = (await call("store", address, lambda: store.GetJob(store_pb2.GetJobRequest(job_id=job_id)))).job
    request = store_pb2.ListStoriesRequest(job_id=job.id, page_size=1000)
    reply = await call("store", address, lambda: store.ListStories(request))
    stories = sorted(reply.stories, key=lambda s: s.title)
    if as_json:
        print(document(job=job, stories=stories))
    else:
        console.print(stories_table(stories))
        console.print(timing_table(job))
        console.print(f"trace id: {job.trace_id or '-'}  (search it in Jaeger)")
        if job.state != common_pb2.JOB_STATE_DONE:
            errors.print(f"[red]job {STATE[job.state]}:[/red] {job.error or '-'}")
    return 0 if job.state == common_pb2.JOB_STATE_DONE else JOB_NOT_DONE


@app.command(cls=Command)
def run(  # noqa: PLR0917 - one parameter per CLI option
    urls: Annotated[list[str], typer.Argument(metavar="URL", help="feed or page URLs", show_default=False)],
    store: StoreOpt = DEFAULT_STORE,
    name: Annotated[str, typer.Option(metavar="NAME", help="a name for listings")] = "",
    time_window_hours: Annotated[
        float, typer.Option(metavar="H", help="only articles this recent (0 = all)")
    ] = 0.0,
    min_articles: Annotated[
        int, typer.Option(metavar="N", help="articles needed for a story (0 = default 2)")
    ] = 0,
    threshold: Annotated[
        float,
        typer.Option(
            metavar="T",
            help="clustering threshold (0 = the backend default: 0.35 events, 0.3 tfidf, 0.5 embeddings)",
        ),
    ] = 0.0,
    model: Annotated[str, typer.Option(metavar="M", help="LLM model (empty = synthesizer default)")] = "",
    max_concurrency: Annotated[
        int, typer.Option(metavar="N", help="cap on concurrent LLM calls (0 = adaptive)")
    ] = 0,
    max_articles: Annotated[
        int, typer.Option(metavar="N", help="stop after this many articles (0 = no limit)")
    ] = 0,
    full_text: Annotated[
        bool, typer.Option(help="read each teaser entry's page for the article's full text")
    ] = True,
    reconnect_for: ReconnectOpt = RECONNECT_FOR,
    otlp_endpoint: Annotated[
        str,
        typer.Option(
            envvar="STORYWIRE_OTLP_ENDPOINT",
            metavar="URL",
            help="OTLP/gRPC endpoint for the CLI's spans (empty = off)",
        ),
    ] = "",
    json_out: JsonOpt = False,
) -> None:
    """Submit a job, watch its progress, then print its stories and a per-stage timing table."""
    setup_telemetry("cli", otlp_endpoint)
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

    async def go(stub: StoreStub) -> int:
        with trace.get_tracer("storywire.cli").start_as_current_span("storywire.run"):
            submitted = await call(
                "store", store, lambda: stub.SubmitJob(store_pb2.SubmitJobRequest(spec=spec))
            )
            job = submitted.job
            if not json_out:
                console.print(f"job {job.id} submitted; trace id {job.trace_id}")
            await watch_job(stub, store, job.id, console=console, quiet=json_out, reconnect_for=reconnect_for)
            code = await finish(stub, store, job.id, json_out)
        await flush_telemetry()
        return code

    on_store(store, go)


JobArg = Annotated[str, typer.Argument(metavar="JOB_ID", help="the job's id", show_default=False)]


@app.command(cls=Command)
def watch(
    job_id: JobArg,
    store: StoreOpt = DEFAULT_STORE,
    reconnect_for: ReconnectOpt = RECONNECT_FOR,
    json_out: JsonOpt = False,
) -> None:
    """Follow a job until it ends, then print its stories and timing table."""

    async def go(stub: StoreStub) -> int:
        await watch_job(stub, store, job_id, console=console, quiet=json_out, reconnect_for=reconnect_for)
        return await finish(stub, store, job_id, json_out)

    on_store(store, go)


@app.command(cls=Command)
def cancel(
    job_id: JobArg,
    reason: Annotated[str, typer.Option(metavar="TEXT", help="recorded as the job's error")] = "",
    store: StoreOpt = DEFAULT_STORE,
    json_out: JsonOpt = False,
) -> None:
    """Cancel a job and print its final state (exit 2 when it had already ended)."""

    async def go(stub: StoreStub) -> int:
        request = store_pb2.CancelJobRequest(job_id=job_id, reason=reason)
        try:
            job = (await stub.CancelJob(request)).job
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise rpc_error("store", store, exc) from None
            get = store_pb2.GetJobRequest(job_id=job_id)
            ended = (await call("store", store, lambda: stub.GetJob(get))).job
            raise CliError(f"job {job_id} had already ended: {STATE[ended.state]}", REJECTED) from None
        if json_out:
            print(document(job=job))
        else:
            stored = next((s.done for s in job.stages if s.stage == common_pb2.STAGE_STORE), 0)
            console.print(f"job {job.id} {STATE[job.state]}: {job.error}; {stored} stories stored")
        return 0

    on_store(store, go)


@app.command(cls=Command)
def jobs(
    store: StoreOpt = DEFAULT_STORE,
    limit: Annotated[
        int, typer.Option(metavar="N", min=1, max=1000, help="most jobs to list, newest first")
    ] = 20,
    json_out: JsonOpt = False,
) -> None:
    """List recent jobs."""

    async def go(stub: StoreStub) -> int:
        request = store_pb2.ListJobsRequest(page_size=limit)
        reply = await call("store", store, lambda: stub.ListJobs(request))
        print(document(jobs=list(reply.jobs))) if json_out else console.print(jobs_table(list(reply.jobs)))
        return 0

    on_store(store, go)


@app.command(cls=Command)
def stories(
    job_id: Annotated[
        str, typer.Argument(metavar="JOB_ID", help="a job's id (none = the newest stories of all jobs)")
    ] = "",
    store: StoreOpt = DEFAULT_STORE,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=1000, help="most stories to list")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List the stories of a job, or the newest stories of all jobs."""

    async def go(stub: StoreStub) -> int:
        if job_id:  # an unknown job is an error, not an empty list
            await call("store", store, lambda: stub.GetJob(store_pb2.GetJobRequest(job_id=job_id)))
        request = store_pb2.ListStoriesRequest(job_id=job_id, page_size=limit)
        found = list((await call("store", store, lambda: stub.ListStories(request))).stories)
        print(document(stories=found)) if json_out else console.print(stories_table(found))
        return 0

    on_store(store, go)


@app.command(cls=Command)
def show(
    story_id: Annotated[str, typer.Argument(metavar="STORY_ID", help="a story's id", show_default=False)],
    store: StoreOpt = DEFAULT_STORE,
    json_out: JsonOpt = False,
) -> None:
    """One story with its source articles."""

    async def go(stub: StoreStub) -> int:
        request = store_pb2.GetStoryRequest(story_id=story_id)
        reply = await call("store", store, lambda: stub.GetStory(request))
        if json_out:
            print(document(story=reply.story, articles=list(reply.articles)))
        else:
            print_story(console, reply.story, list(reply.articles))
        return 0

    on_store(store, go)


@cache_app.command("stats", cls=Command)
def cache_stats(
    synthesizer: Annotated[
        str,
        typer.Option(
            envvar="STORYWIRE_SYNTHESIZER_ADDRESS",
            metavar="HOST:PORT",
            help="host:port of the synthesizer service",
        ),
    ] = "127.0.0.1:50052",
    json_out: JsonOpt = False,
) -> None:
    """Cache hits, misses, bytes and evictions per tier, coalesced calls and the concurrency limit."""

    async def go() -> int:
        channel, stub = synth_stub(synthesizer)
        async with channel:
            request = synthesizer_pb2.GetCacheStatsRequest()
            reply = await call("synthesizer", synthesizer, lambda: stub.GetCacheStats(request))
        if json_out:
            print(document(stats=reply))
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
