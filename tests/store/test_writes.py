"""Client-stream writes: batched, exact on read-back, idempotent on retry, rejections reported."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest
from storywire.v1 import common_pb2, store_pb2

from services.store.validation import article_id
from tests.factories import make_article, make_story, unique
from tests.store.conftest import Store, submit

pytestmark = pytest.mark.integration


async def stream_articles(
    items: Iterable[common_pb2.Article], chunk: int = 250
) -> AsyncIterator[store_pb2.PutArticlesRequest]:
    items = list(items)
    for start in range(0, len(items), chunk):
        yield store_pb2.PutArticlesRequest(articles=items[start : start + chunk])


async def stream_stories(
    items: Iterable[common_pb2.Story], chunk: int = 4
) -> AsyncIterator[store_pb2.PutStoriesRequest]:
    items = list(items)
    for start in range(0, len(items), chunk):
        yield store_pb2.PutStoriesRequest(stories=items[start : start + chunk])


async def read_all(store: Store, ids: list[str]) -> list[common_pb2.Article]:
    out: list[common_pb2.Article] = []
    for start in range(0, len(ids), 1000):
        reply = await store.BatchGetArticles(
            store_pb2.BatchGetArticlesRequest(article_ids=ids[start : start + 1000])
        )
        assert list(reply.missing_ids) == []
        out += reply.articles
    return out


async def test_ten_thousand_articles_round_trip_and_retry(
    store: Store,
) -> None:
    prefix = unique()
    articles = [make_article(prefix, i) for i in range(10_000)]
    first = await store.PutArticles(stream_articles(articles))
    assert first.result.inserted == 10_000
    assert (first.result.updated, first.result.duplicates, len(first.result.rejected)) == (0, 0, 0)

    ids = [article_id(a.canonical_url, a.content_hash) for a in articles]
    stored = await read_all(store, ids)
    assert len(stored) == 10_000
    for sent, got, expected_id in zip(articles, stored, ids, strict=True):
        sent_copy = common_pb2.Article()
        sent_copy.CopyFrom(sent)
        sent_copy.id = expected_id
        assert got == sent_copy

    again = await store.PutArticles(stream_articles(articles))
    assert (again.result.inserted, again.result.updated, again.result.duplicates) == (0, 0, 10_000)
    assert await read_all(store, ids) == stored


async def test_changed_article_fields_count_as_updates(store: Store) -> None:
    prefix = unique()
    articles = [make_article(prefix, i) for i in range(5)]
    await store.PutArticles(stream_articles(articles))
    articles[2].title = "A corrected title"
    reply = await store.PutArticles(stream_articles(articles))
    assert (reply.result.inserted, reply.result.updated, reply.result.duplicates) == (0, 1, 4)


async def test_bad_articles_are_rejected_with_reasons_and_the_rest_written(
    store: Store,
) -> None:
    prefix = unique()
    good = [make_article(prefix, i) for i in range(3)]
    no_canonical = make_article(prefix, 10)
    no_canonical.canonical_url = ""
    with_nul = make_article(prefix, 11, text="bad\x00byte")
    wrong_id = make_article(prefix, 12)
    wrong_id.id = "0" * 32
    stream = [good[0], no_canonical, good[1], with_nul, wrong_id, good[2]]
    reply = await store.PutArticles(stream_articles(stream, chunk=2))
    assert reply.result.inserted == 3
    reasons = {r.index: r.reason for r in reply.result.rejected}
    assert reasons == {
        1: "canonical_url is required",
        3: "text: contains the control character U+0000 at position 3",
        4: "id does not match canonical_url and content_hash",
    }


async def test_stories_upsert_by_job_and_cluster_key(store: Store) -> None:
    job = await submit(store)
    prefix = unique()
    articles = [make_article(prefix, i) for i in range(4)]
    await store.PutArticles(stream_articles(articles))
    ids = [article_id(a.canonical_url, a.content_hash) for a in articles]
    stories = [make_story(job.id, f"k{i}", ids[i : i + 2]) for i in range(3)]
    first = await store.PutStories(stream_stories(stories))
    assert (first.result.inserted, first.result.updated, first.result.duplicates) == (3, 0, 0)
    again = await store.PutStories(stream_stories(stories))
    assert (again.result.inserted, again.result.updated, again.result.duplicates) == (0, 0, 3)
    stories[1].summary = "A better summary."
    changed = await store.PutStories(stream_stories(stories))
    assert (changed.result.inserted, changed.result.updated, changed.result.duplicates) == (0, 1, 2)

    listed = await store.ListStories(store_pb2.ListStoriesRequest(job_id=job.id))
    assert sorted(s.cluster_key for s in listed.stories) == ["k0", "k1", "k2"]
    one = next(s for s in listed.stories if s.cluster_key == "k1")
    assert one.summary == "A better summary."
    detail = await store.GetStory(store_pb2.GetStoryRequest(story_id=one.id))
    assert list(detail.story.article_ids) == ids[1:3]
    assert [a.id for a in detail.articles] == ids[1:3]
    assert detail.story.usage.prompt_tokens == 100


async def test_story_rejections(store: Store) -> None:
    job = await submit(store)
    unknown_job = make_story("7d0e4f8e-8a4b-4f43-9b59-0d8a9a3f4c11", "x")
    empty = make_story(job.id, "y")
    empty.summary = "  "
    bad_job = make_story("not-a-uuid", "z")
    reply = await store.PutStories(stream_stories([make_story(job.id, "ok"), unknown_job, empty, bad_job]))
    assert reply.result.inserted == 1
    reasons = {r.index: r.reason for r in reply.result.rejected}
    assert reasons == {
        1: "job 7d0e4f8e-8a4b-4f43-9b59-0d8a9a3f4c11 not found",
        2: "summary is empty",
        3: "job_id is not a UUID",
    }


async def test_story_listing_pages_are_stable_and_complete(store: Store) -> None:
    job = await submit(store)
    other = await submit(store)
    # several batches, so stories share created_at values and the id breaks ties
    for batch in range(4):
        await store.PutStories(stream_stories([make_story(job.id, f"b{batch}-{i}") for i in range(6)]))
    await store.PutStories(stream_stories([make_story(other.id, "other")]))
    seen: list[str] = []
    token = ""
    while True:
        page = await store.ListStories(
            store_pb2.ListStoriesRequest(job_id=job.id, page_size=7, page_token=token)
        )
        assert len(page.stories) <= 7
        seen += [s.cluster_key for s in page.stories]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(f"b{b}-{i}" for b in range(4) for i in range(6))
    assert len(seen) == len(set(seen))
    everything = await store.ListStories(store_pb2.ListStoriesRequest(page_size=1000))
    keys = {s.cluster_key for s in everything.stories}
    assert "other" in keys
    created = everything.stories[0].created_at
    later = await store.ListStories(store_pb2.ListStoriesRequest(created_after=created, page_size=1000))
    assert all(s.created_at.ToDatetime() >= created.ToDatetime() for s in later.stories)
    assert later.stories
