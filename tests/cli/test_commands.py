"""Every ``storywire`` command and exit code, run as the real command against the real services."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import pytest
from storywire.v1 import common_pb2, store_pb2

from devtools.stack.proc import free_port
from tests.cli.conftest import Cli, Gate, read_until
from tests.e2e.conftest import Deployment, Store, job_stories, submit

pytestmark = pytest.mark.integration


async def test_help_shows_metavars_not_python_types(cli: Cli) -> None:
    for args in (
        ["--help"],
        ["run", "--help"],
        ["jobs", "--help"],
        ["stories", "--help"],
        ["cancel", "--help"],
    ):
        result = await cli.run(*args)
        assert result.code == 0, result
        for typer_label in ("{", "<list[str]>", "<bool>", "<str>", "<int>"):
            assert typer_label not in result.out, (args, result)
    run_help = (await cli.run("run", "--help")).out
    assert "Usage: storywire run [OPTIONS] URL..." in run_help
    assert "--store" in run_help
    assert "HOST:PORT" in run_help
    jobs_help = (await cli.run("jobs", "--help")).out
    limit_row = next(line for line in jobs_help.splitlines() if "--limit" in line)
    assert "most jobs to list" in limit_row
    assert "cancel" in (await cli.run("--help")).out


async def test_run_json_is_one_document_with_numbers_and_zeros(cli: Cli, deployment: Deployment) -> None:
    result = await cli.run("run", "--json", "--name", "cli-json", *deployment.urls())
    assert result.code == 0, result
    doc = json.loads(result.out)  # one document: json.loads fails on "Extra data"
    assert set(doc) == {"job", "stories"}
    job, stories = doc["job"], doc["stories"]
    assert job["state"] == "JOB_STATE_DONE"
    assert isinstance(job["totals"]["llmCalls"], int)
    assert job["totals"]["llmCalls"] > 0
    assert job["totals"]["fallbacks"] == 0  # a zero is present, as a number
    assert job["spec"]["options"]["maxArticles"] == 0
    assert job["error"] == ""
    assert len(stories) == 14
    assert all(isinstance(s["usage"]["promptTokens"], int) for s in stories)
    by_stage = {s["stage"]: s for s in job["stages"]}
    for stage in by_stage.values():
        assert isinstance(stage["done"], int)
        assert isinstance(stage["elapsed"], float)
        assert stage["finishedAt"], stage  # every stage of a finished job has ended, the store stage too
    assert by_stage["STAGE_STORE"]["done"] == 14

    # watch --json on the finished job: the same single document, and the store stage's time is fixed
    again = await cli.run("watch", "--json", job["id"])
    assert again.code == 0, again
    later = json.loads(again.out)
    assert {s["id"] for s in later["stories"]} == {s["id"] for s in stories}
    later_store = next(s for s in later["job"]["stages"] if s["stage"] == "STAGE_STORE")
    assert later_store["elapsed"] == by_stage["STAGE_STORE"]["elapsed"]
    assert later_store["finishedAt"] == by_stage["STAGE_STORE"]["finishedAt"]


async def test_stories_lists_ids_that_show_accepts(cli: Cli, deployment: Deployment, store: Store) -> None:
    job = await submit(store, deployment.urls())
    watched = await cli.run("watch", job.id)
    assert watched.code == 0, watched
    stored = await job_stories(store, job.id)
    listing = await cli.run("stories", job.id)
    assert listing.code == 0, listing
    assert f"{len(stored)} stories" in listing.out
    for story in stored:
        assert story.id in listing.out, listing
    shown = await cli.run("show", stored[0].id)
    assert shown.code == 0, shown
    assert stored[0].title in shown.out
    shown_json = json.loads((await cli.run("show", "--json", stored[0].id)).out)
    assert shown_json["story"]["id"] == stored[0].id
    assert len(shown_json["articles"]) == len(stored[0].article_ids)
    stats = await cli.run("cache", "stats", "--json")
    assert stats.code == 0, stats
    tiers = json.loads(stats.out)["stats"]["tiers"]
    assert all(isinstance(t["hits"], int) for t in tiers)
    assert all(isinstance(t["misses"], int) for t in tiers)
    newest = await cli.run("stories", "--json", "--limit", "3")
    assert newest.code == 0, newest
    assert len(json.loads(newest.out)["stories"]) == 3, newest
    jobs = await cli.run("jobs", "--json", "--limit", "5")
    assert job.id in {j["id"] for j in json.loads(jobs.out)["jobs"]}, jobs


async def test_unknown_and_malformed_ids_exit_2_without_traceback(cli: Cli) -> None:
    unknown = str(uuid.uuid4())
    for args in (["watch", unknown], ["stories", unknown], ["cancel", unknown]):
        result = await cli.run(*args)
        assert result.code == 2, (args, result)
        assert f"job {unknown} not found" in result.err, (args, result)
        assert "Traceback" not in result.err + result.out
    for args in (["watch", "nope"], ["stories", "nope"], ["cancel", "nope"]):
        result = await cli.run(*args)
        assert result.code == 2, (args, result)
        assert "job_id" in result.err, (args, result)
        assert "nope" in result.err, (args, result)
        assert "Traceback" not in result.err + result.out
    missing_story = await cli.run("show", "0" * 32)
    assert missing_story.code == 2, missing_story
    assert "not found" in missing_story.err, missing_story


async def test_cancel_prints_the_final_state(
    cli: Cli, deployment: Deployment, store: Store, gate: Gate
) -> None:
    job = await submit(store, [*deployment.urls(), gate.url])
    await asyncio.wait_for(gate.requested.wait(), 60)  # the job is running: its fetch waits at the gate
    cancelled = await cli.run("cancel", job.id, "--reason", "changed my mind")
    assert cancelled.code == 0, cancelled
    assert f"job {job.id} cancelled: changed my mind" in cancelled.out
    final = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert final.state == common_pb2.JOB_STATE_CANCELLED

    watched = await cli.run("watch", job.id)  # a job that did not end done exits 1
    assert watched.code == 1, watched
    assert "job cancelled: changed my mind" in watched.err
    again = await cli.run("cancel", "--json", job.id)
    assert again.code == 2, again
    assert f"job {job.id} had already ended: cancelled" in again.err


async def test_failed_job_exits_1(cli: Cli, deployment: Deployment) -> None:
    missing = deployment.corpus.base + "/no-such-feed.xml"
    result = await cli.run("run", missing)
    assert result.code == 1, result
    assert "job failed:" in result.err, result
    assert "404" in result.err, result


async def test_unreachable_services_exit_3_with_a_reason(cli: Cli) -> None:
    closed = f"127.0.0.1:{free_port()}"
    result = await cli.run("jobs", "--store", closed)
    assert result.code == 3, result
    assert f"the store service at {closed} is unreachable" in result.err
    assert "Connection refused" in result.err
    result = await cli.run("cache", "stats", "--synthesizer", closed)
    assert result.code == 3, result
    assert f"the synthesizer service at {closed} is unreachable" in result.err, result
    result = await cli.run("jobs", "--store", "nothost.invalid:50053")
    assert result.code == 3, result
    assert "cannot resolve host 'nothost.invalid'" in result.err, result  # not an empty reason


async def test_usage_errors_exit_2(cli: Cli) -> None:
    result = await cli.run("jobs", "--store", "nothost")
    assert result.code == 2, result
    assert "expected HOST:PORT" in result.err, result
    result = await cli.run("run")
    assert result.code == 2, result
    assert "URL" in result.err, result
    result = await cli.run("jobs", "--limit", "0")
    assert result.code == 2, result
    assert "--limit" in result.err, result


async def test_ctrl_c_exits_130_and_the_job_keeps_running(
    cli: Cli, deployment: Deployment, store: Store, gate: Gate
) -> None:
    proc = await cli.start("run", gate.url, *deployment.urls())
    head = await read_until(proc.stdout, "submitted")
    job_id = head.split("job ", 1)[1].split()[0]
    await asyncio.wait_for(gate.requested.wait(), 60)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130, err
    assert "interrupted" in err.decode()
    assert "Traceback" not in err.decode()
    job = (await store.GetJob(store_pb2.GetJobRequest(job_id=job_id))).job
    assert job.state not in (common_pb2.JOB_STATE_CANCELLED, common_pb2.JOB_STATE_FAILED)
    await store.CancelJob(store_pb2.CancelJobRequest(job_id=job_id))
