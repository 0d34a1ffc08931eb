"""Writes fenced by the job's lease: a PutArticles or PutStories message with a lease token is written only
while that lease is the job's live lease, so an attempt that was abandoned, or whose job was claimed
again, handed over or ended, can never add or change data of the job after it moved on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import grpc
import pytest
from storywire.v1 import common_pb2, store_pb2

from devtools.stack import StackInfo
from services.store.validation import article_id
from tests.factories import make_article, make_story, unique
from tests.store.conftest import Store, submit
from tests.store.test_jobs import claim_job, handover

pytestmark = pytest.mark.integration
LIVE_LEASE = "is not the job's live lease: the job was re-claimed or has ended"


async def fenced_stories(
    token: str, *messages: Sequence[common_pb2.Story]
) -> AsyncIterator[store_pb2.PutStoriesRequest]:
    for stories in messages:
        yield store_pb2.PutStoriesRequest(stories=stories, lease_token=token)


async def fenced_articles(
    job: common_pb2.Job, token: str, articles: Sequence[common_pb2.Article]
) -> AsyncIterator[store_pb2.PutArticlesRequest]:
    yield store_pb2.PutArticlesRequest(
        articles=articles, job_id=job.id, attempt=job.attempts, lease_token=token
    )


async def claimed(store: Store, worker: str, lease: float = 30) -> tuple[common_pb2.Job, str]:
    job = await submit(store)
    token = await claim_job(store, job.id, worker, lease=lease)
    return (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job, token


async def stories_of(store: Store, job_id: str) -> dict[str, str]:
    """The job's stories: cluster key -> title."""
    listed = await store.ListStories(store_pb2.ListStoriesRequest(job_id=job_id))
    return {s.cluster_key: s.title for s in listed.stories}


async def recorded(stack: StackInfo, job_id: str) -> int:
    """How many articles the job's attempts recorded (job_articles)."""
    conn = await asyncpg.connect(stack.postgres_dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM job_articles WHERE job_id = $1", uuid.UUID(job_id)
        )
        return count
    finally:
        await conn.close()


def assert_fenced_out(result: common_pb2.WriteResult, n: int, token: str) -> None:
    assert (result.inserted, result.updated, result.duplicates) == (0, 0, 0)
    assert [r.index for r in result.rejected] == list(range(n))
    assert all(r.reason == f"lease {token[:8]} {LIVE_LEASE}" for r in result.rejected), result.rejected


async def test_a_write_under_the_live_lease_lands(store: Store, stack: StackInfo) -> None:
    job, token = await claimed(store, "fence-live")
    articles = [make_article(unique(), i) for i in range(3)]
    wrote = await store.PutArticles(fenced_articles(job, token, articles))
    assert (wrote.result.inserted, wrote.lease_lost, list(wrote.result.rejected)) == (3, False, [])
    assert await recorded(stack, job.id) == 3
    ids = [article_id(a.canonical_url, a.content_hash) for a in articles]
    reply = await store.PutStories(fenced_stories(token, [make_story(job.id, "k1", ids)]))
    assert (reply.result.inserted, reply.lease_lost, list(reply.result.rejected)) == (1, False, [])
    assert await stories_of(store, job.id) == {"k1": "Story k1"}


async def test_a_write_with_the_lease_of_an_attempt_whose_job_was_claimed_again_changes_nothing(
    store: Store, stack: StackInfo
) -> None:
    """The first worker's lease ran out and another worker claimed the job: the first worker's late
    writes (articles, a new story, and a story of the new attempt's) are all refused."""
    job, old = await claimed(store, "fence-stalled", lease=0.3)
    new = await claim_job(store, job.id, "fence-resumer", wait=10)  # waits for the old lease to run out
    mine = make_story(job.id, "shared")
    assert (await store.PutStories(fenced_stories(new, [mine]))).result.inserted == 1

    late = [make_story(job.id, "shared"), make_story(job.id, "extra")]
    late[0].title = "Overwritten"
    reply = await store.PutStories(fenced_stories(old, late))
    assert reply.lease_lost
    assert_fenced_out(reply.result, 2, old)
    assert await stories_of(store, job.id) == {"shared": "Story shared"}

    articles = [make_article(unique(), i) for i in range(2)]
    wrote = await store.PutArticles(fenced_articles(job, old, articles))
    assert wrote.lease_lost
    assert_fenced_out(wrote.result, 2, old)
    assert await recorded(stack, job.id) == 0
    ids = [article_id(a.canonical_url, a.content_hash) for a in articles]
    found = await store.BatchGetArticles(store_pb2.BatchGetArticlesRequest(article_ids=ids))
    assert sorted(found.missing_ids) == sorted(ids)  # the articles themselves were not written either


async def test_a_write_after_the_job_is_done_adds_no_story(store: Store) -> None:
    job, token = await claimed(store, "fence-done")
    await store.PutStories(fenced_stories(token, [make_story(job.id, "final")]))
    done = store_pb2.UpdateJobRequest(
        job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE, final_cluster_keys=["final"]
    )
    assert (await store.UpdateJob(done)).job.state == common_pb2.JOB_STATE_DONE
    # an abandoned task of the same attempt: its token was the live one until the job ended
    reply = await store.PutStories(fenced_stories(token, [make_story(job.id, "late")]))
    assert reply.lease_lost
    assert_fenced_out(reply.result, 1, token)
    assert await stories_of(store, job.id) == {"final": "Story final"}


async def until_waiting(conn: asyncpg.Connection, n: int, timeout: float = 30.0) -> None:
    """Until ``n`` other sessions of this database wait for a lock (PostgreSQL has no event for it)."""
    query = """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"""
    async with asyncio.timeout(timeout):
        while await conn.fetchval(query) < n:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.05)


async def test_a_write_queued_behind_the_done_update_adds_no_story(store: Store, stack: StackInfo) -> None:
    """The interleaving the row lock rules out: the DONE update and a late story write of the same
    attempt wait for the job row together (held here, as a slow transaction would), the DONE first. The
    write then sees the job ended: it stores nothing, so the DONE job keeps exactly its final stories."""
    job, token = await claimed(store, "fence-race")
    await store.PutStories(fenced_stories(token, [make_story(job.id, "final")]))
    blocker = await asyncpg.connect(stack.postgres_dsn)
    try:
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", uuid.UUID(job.id))
        done = asyncio.ensure_future(
            store.UpdateJob(
                store_pb2.UpdateJobRequest(
                    job_id=job.id, lease_token=token, state=common_pb2.JOB_STATE_DONE,
                    final_cluster_keys=["final"],
                )
            )
        )  # fmt: skip
        await until_waiting(blocker, 1)
        late = asyncio.ensure_future(store.PutStories(fenced_stories(token, [make_story(job.id, "late")])))
        await until_waiting(blocker, 2)
        await lock.commit()
        ended, reply = await asyncio.wait_for(asyncio.gather(done, late), 30)
    finally:
        await blocker.close()
    assert ended.job.state == common_pb2.JOB_STATE_DONE
    assert reply.lease_lost
    assert_fenced_out(reply.result, 1, token)
    assert await stories_of(store, job.id) == {"final": "Story final"}


async def test_a_late_article_write_after_a_handover_records_nothing(store: Store, stack: StackInfo) -> None:
    """A handover drops the handed-over attempt's recorded articles (the next claim reuses its attempt
    number); a write of that attempt arriving afterwards must not record them again."""
    job, token = await claimed(store, "fence-handover")
    wrote = await store.PutArticles(fenced_articles(job, token, [make_article(unique(), 0)]))
    assert wrote.result.inserted == 1
    assert await recorded(stack, job.id) == 1
    await store.UpdateJob(handover(job.id, token))
    assert await recorded(stack, job.id) == 0
    late = await store.PutArticles(fenced_articles(job, token, [make_article(unique(), 1)]))
    assert late.lease_lost
    assert_fenced_out(late.result, 1, token)
    assert await recorded(stack, job.id) == 0


async def test_a_job_without_a_lease_has_no_live_lease(store: Store, stack: StackInfo) -> None:
    """Given back, the job's token is NULL: no token is its live lease, not even the text "None" (the
    string of a NULL), for a write or for an update."""
    job, token = await claimed(store, "fence-none")
    await store.UpdateJob(handover(job.id, token))
    late = await store.PutStories(fenced_stories("None", [make_story(job.id, "none")]))
    assert late.lease_lost
    assert_fenced_out(late.result, 1, "None")
    assert await stories_of(store, job.id) == {}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.UpdateJob(
            store_pb2.UpdateJobRequest(job_id=job.id, lease_token="None", state=common_pb2.JOB_STATE_STORING)
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION, info.value.details()
    again = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert again.state == common_pb2.JOB_STATE_QUEUED


async def test_unfenced_writes_still_land_and_each_message_is_checked_by_its_own_token(
    store: Store, stack: StackInfo
) -> None:
    """No token: a plain write, as tools and tests make, even to a job whose lease moved on. In one stream
    a message under a dead lease is refused and the unfenced message after it is written."""
    job, token = await claimed(store, "fence-plain")
    await store.UpdateJob(handover(job.id, token))

    async def mixed() -> AsyncIterator[store_pb2.PutStoriesRequest]:
        yield store_pb2.PutStoriesRequest(stories=[make_story(job.id, "fenced")], lease_token=token)
        yield store_pb2.PutStoriesRequest(stories=[make_story(job.id, "plain")])

    reply = await store.PutStories(mixed())
    assert reply.lease_lost
    assert reply.result.inserted == 1
    assert [(r.index, r.key) for r in reply.result.rejected] == [(0, "fenced")]
    assert await stories_of(store, job.id) == {"plain": "Story plain"}

    async def plain_articles() -> AsyncIterator[store_pb2.PutArticlesRequest]:
        yield store_pb2.PutArticlesRequest(
            articles=[make_article(unique(), 0)], job_id=job.id, attempt=job.attempts
        )

    wrote = await store.PutArticles(plain_articles())
    assert (wrote.result.inserted, wrote.lease_lost) == (1, False)
    assert await recorded(stack, job.id) == 1


async def test_a_lease_token_needs_the_job_id(store: Store) -> None:
    async def no_job() -> AsyncIterator[store_pb2.PutArticlesRequest]:
        yield store_pb2.PutArticlesRequest(
            articles=[make_article(unique(), 0)], lease_token=str(uuid.uuid4())
        )

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await store.PutArticles(no_job())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "job_id" in (info.value.details() or "")
