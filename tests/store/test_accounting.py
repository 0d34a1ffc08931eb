"""A job is DONE only when its entries add up over article ids; retired stories leave the job and are
announced; a released job goes back to the queue at once with its progress."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from google.protobuf.duration_pb2 import Duration
from storywire.v1 import common_pb2, store_pb2

from services.store.validation import article_id
from tests.factories import make_article, make_story, unique
from tests.store.conftest import Store, submit
from tests.store.test_jobs import claim_job
from tests.store.test_writes import stream_stories

pytestmark = pytest.mark.integration
R = common_pb2.LeftOutReason


async def job_articles(store: Store, job: common_pb2.Job, n: int) -> list[str]:
    """Write n articles as articles of the job's current attempt; their ids."""
    articles = [make_article(unique(), i) for i in range(n)]

    async def requests() -> AsyncIterator[store_pb2.PutArticlesRequest]:
        yield store_pb2.PutArticlesRequest(articles=articles, job_id=job.id, attempt=job.attempts)

    reply = await store.PutArticles(requests())
    assert reply.result.inserted == n
    return [article_id(a.canonical_url, a.content_hash) for a in articles]


async def claimed(store: Store, worker: str) -> tuple[common_pb2.Job, str]:
    job = await submit(store)
    token = await claim_job(store, job.id, worker)
    return (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job, token


def left(ids: list[str], reason: int) -> list[common_pb2.LeftOutArticle]:
    return [common_pb2.LeftOutArticle(article_id=i, reason=reason) for i in ids]  # type: ignore[arg-type]


async def test_a_job_whose_entries_add_up_is_done_with_its_counts(store: Store) -> None:
    job, token = await claimed(store, "acct-ok")
    ids = await job_articles(store, job, 5)
    stories = [make_story(job.id, "k1", ids[:2]), make_story(job.id, "k2", ids[2:4])]
    await store.PutStories(stream_stories(stories))
    not_taken = [
        *left(["dup-1"], R.LEFT_OUT_REASON_DUPLICATE),
        *left(["old-1", "old-2"], R.LEFT_OUT_REASON_OUT_OF_WINDOW),
    ]
    reply = await store.UpdateJob(
        store_pb2.UpdateJobRequest(
            job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE, entries_found=8,
            left_out=[*left(ids[4:], R.LEFT_OUT_REASON_CLUSTER_TOO_SMALL), *not_taken],
        )
    )  # fmt: skip
    done = reply.job
    assert done.state == common_pb2.JOB_STATE_DONE, done.error
    a = done.accounting
    assert (a.entries_found, a.articles, a.in_stories, a.stories, a.balanced) == (8, 5, 4, 2, True)
    by_reason = {c.reason: c.entries for c in a.left_out}
    assert by_reason[R.LEFT_OUT_REASON_CLUSTER_TOO_SMALL] == 1
    assert by_reason[R.LEFT_OUT_REASON_OUT_OF_WINDOW] == 2
    assert by_reason[R.LEFT_OUT_REASON_DUPLICATE] == 1
    assert a.entries_found == a.in_stories + sum(by_reason.values())


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("lost", "1 articles are in no story and have no reason"),
        ("found", "the fetch found 9 entries but 5 articles + 0 entries not taken = 5"),
        ("twice", "1 articles are in more than one story"),
        ("foreign", "1 story articles are not articles of the job"),
        ("no-reason", "1 left-out entries have no valid reason"),
    ],
)
async def test_the_store_refuses_done_when_the_counts_do_not_add_up(
    store: Store, case: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    job, token = await claimed(store, f"acct-{case}")
    ids = await job_articles(store, job, 5)
    stories = [make_story(job.id, "k1", ids[:2]), make_story(job.id, "k2", ids[2:4])]
    found, small = 5, left(ids[4:], R.LEFT_OUT_REASON_CLUSTER_TOO_SMALL)
    if case == "lost":
        small = []
    elif case == "found":
        found = 9
    elif case == "twice":
        stories[1] = make_story(job.id, "k2", ids[1:4])
    elif case == "foreign":
        stories[1] = make_story(job.id, "k2", [*ids[2:4], "not-an-article-of-the-job"])
    elif case == "no-reason":
        small.append(common_pb2.LeftOutArticle(article_id="x"))
        found = 6
    await store.PutStories(stream_stories(stories))
    with caplog.at_level(logging.ERROR):
        reply = await store.UpdateJob(
            store_pb2.UpdateJobRequest(
                job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE, entries_found=found,
                left_out=small,
            )
        )  # fmt: skip
    assert reply.job.state == common_pb2.JOB_STATE_FAILED
    assert reply.job.error.startswith("accounting does not add up: ")
    assert expected in reply.job.error
    assert reply.job.accounting.balanced is False
    assert expected in reply.job.accounting.mismatch
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("accounting does not add up" in m and job.id in m for m in logged), logged


async def test_retired_stories_leave_the_job_and_are_announced(store: Store) -> None:
    job, token = await claimed(store, "acct-retire")
    ids = await job_articles(store, job, 4)
    await store.PutStories(
        stream_stories([make_story(job.id, "early", ids[:2]), make_story(job.id, "other", ids[2:])])
    )
    await store.PutStories(stream_stories([make_story(job.id, "final", ids)]))
    await store.UpdateJob(
        store_pb2.UpdateJobRequest(
            job_id=job.id, lease_token=token,
            retired=[store_pb2.RetiredStory(cluster_key="early", replaced_by=["final"])],
        )
    )  # fmt: skip
    reply = await store.UpdateJob(
        store_pb2.UpdateJobRequest(
            job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE, entries_found=4,
            final_cluster_keys=["final"],
        )
    )  # fmt: skip
    assert reply.job.state == common_pb2.JOB_STATE_DONE, reply.job.error
    assert (reply.job.accounting.stories, reply.job.accounting.retired_stories) == (1, 2)
    listed = await store.ListStories(store_pb2.ListStoriesRequest(job_id=job.id))
    assert [s.cluster_key for s in listed.stories] == ["final"]
    stored = next(s for s in reply.job.stages if s.stage == common_pb2.STAGE_STORE)
    assert (stored.done, stored.total) == (1, 1)


async def test_a_watcher_sees_the_retirement(store: Store) -> None:
    job, token = await claimed(store, "acct-watch")
    ids = await job_articles(store, job, 2)
    await store.PutStories(stream_stories([make_story(job.id, "early", ids)]))
    seen: list[store_pb2.WatchJobResponse] = []
    opened = asyncio.Event()

    async def watch() -> None:
        async for event in store.WatchJob(store_pb2.WatchJobRequest(job_id=job.id)):
            seen.append(event)
            opened.set()
            if event.WhichOneof("event") == "retired":
                return

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(opened.wait(), 30)  # the snapshot came: every later event will too
    await store.UpdateJob(
        store_pb2.UpdateJobRequest(
            job_id=job.id, lease_token=token,
            retired=[store_pb2.RetiredStory(cluster_key="early", replaced_by=["final"])],
        )
    )  # fmt: skip
    await asyncio.wait_for(watcher, 30)
    retired = seen[-1].retired
    assert (retired.cluster_key, list(retired.replaced_by)) == ("early", ["final"])
    assert retired.story_id


async def test_a_released_job_is_queued_again_and_claimable_after_its_delay(store: Store) -> None:
    job, token = await claimed(store, "acct-release")
    progress = common_pb2.StageProgress(stage=common_pb2.STAGE_FETCH, done=2, total=5)
    reply = await store.UpdateJob(
        store_pb2.UpdateJobRequest(
            job_id=job.id, lease_token=token, release=True, stages=[progress], error="UNAVAILABLE: fetcher",
            retry_after=Duration(nanos=300_000_000),
        )
    )  # fmt: skip
    assert reply.job.state == common_pb2.JOB_STATE_QUEUED
    assert reply.job.error == ""
    assert reply.job.stages[0].done == 2
    loop = asyncio.get_running_loop()
    started = loop.time()
    token_b = await claim_job(store, job.id, "acct-release-b", wait=10)
    assert token_b != token
    assert loop.time() - started < 5
    again = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert again.attempts == 2
