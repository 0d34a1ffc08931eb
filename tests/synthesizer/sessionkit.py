"""Helpers for tests of the synthesis session: the sample corpus as articles grouped by source, timed
input streams, a fake story writer, and the accounting check every test applies to a finished stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from storywire.v1 import common_pb2, synthesizer_pb2

from devtools.corpus.build import compose
from runtime.ids import article_id, content_hash
from services.synthesizer.session import SessionConfig
from services.synthesizer.stories.prompt import PROMPT_VERSION, SourceArticle
from services.synthesizer.stories.writer import GenParams, StoryResult

PARAMS = GenParams(model="fake-1", max_tokens=64, temperature=0.0)


def sample_by_source() -> dict[str, list[common_pb2.Article]]:
    """The sample corpus's 154 articles by source: its five feeds, and one source per standalone page."""
    out: dict[str, list[common_pb2.Article]] = {}
    for item in compose():
        digest = content_hash(item.title, item.text)
        canonical = "http://sample.test" + item.path
        source = item.path if item.page_only else item.outlet
        article = common_pb2.Article(
            id=article_id(canonical, digest), url=canonical, canonical_url=canonical, content_hash=digest,
            title=item.title, text=item.text, source_url=source,
        )  # fmt: skip
        out.setdefault(source, []).append(article)
    return out


def labels() -> dict[str, str]:
    """Article id -> event label."""
    return {
        article_id("http://sample.test" + i.path, content_hash(i.title, i.text)): i.event for i in compose()
    }


async def timed(
    by_source: dict[str, list[common_pb2.Article]], delays: dict[str, float], gap: float = 0.0
) -> AsyncIterator[common_pb2.Article]:
    """Each source's articles from ``delays[source]`` seconds after the start (0 when absent), ``gap``
    seconds apart, merged in time order (sources in name order at equal times)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    schedule = sorted(
        (delays.get(source, 0.0) + i * gap, source, i)
        for source, articles in by_source.items()
        for i in range(len(articles))
    )
    for at, source, i in schedule:
        wait = start + at - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        yield by_source[source][i]


class FakeWriter:
    """A story writer without an LLM: each story takes ``latency`` seconds of the loop's clock."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.calls = 0
        self.in_flight = 0

    async def write(self, articles: Sequence[SourceArticle], params: GenParams) -> StoryResult:
        self.calls += 1
        self.in_flight += 1
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        ids = sorted(a.id for a in articles)
        return StoryResult(f"Story of {len(ids)}", " ".join(ids), params.model, PROMPT_VERSION, llm_calls=1)


def config(release_idle: float, min_size: int = 2, threshold: float = 0.3) -> SessionConfig:
    return SessionConfig(
        job_id="job-test", threshold=threshold, min_size=min_size, params=PARAMS, max_concurrency=0,
        release_idle=release_idle,
    )  # fmt: skip


@dataclass
class Settled:
    """What a finished stream says, once checked."""

    final: dict[str, frozenset[str]]  # final cluster key -> article ids of its story
    left_out: set[str]
    provisional: set[str] = field(default_factory=set)  # keys of clusters released early
    retired: dict[str, list[str]] = field(default_factory=dict)  # key -> replaced_by
    first_story_at: int = -1  # index of the first story in the stream


def settle(responses: list[synthesizer_pb2.SynthesizeResponse], input_ids: set[str]) -> Settled:
    """Check the stream's accounting and return its final stories. Every input article is in exactly
    one final story or left out with a reason; every final key has exactly one story that was not
    retired; a retirement follows the story it retires; the summary comes last and agrees."""
    assert responses, "no response at all"
    assert responses[-1].WhichOneof("item") == "summary", "the summary must come last"
    summary = responses[-1].summary
    clusters: dict[str, common_pb2.Cluster] = {}
    stories: dict[str, frozenset[str]] = {}
    out = Settled(final={}, left_out=set())
    for index, r in enumerate(responses[:-1]):
        kind = r.WhichOneof("item")
        if kind == "cluster":
            assert r.cluster.key not in clusters, f"cluster {r.cluster.key} released twice"
            clusters[r.cluster.key] = r.cluster
            if r.cluster.provisional:
                out.provisional.add(r.cluster.key)
        elif kind == "story":
            key = r.story.cluster_key
            assert key in clusters, "a story before its cluster"
            assert key not in stories, f"two stories for cluster {key}"
            assert sorted(r.story.article_ids) == sorted(clusters[key].article_ids)
            stories[key] = frozenset(r.story.article_ids)
            out.first_story_at = index if out.first_story_at < 0 else out.first_story_at
        elif kind == "retired":
            key = r.retired.cluster_key
            assert key in stories, "a retirement must follow the story it retires"
            assert key in out.provisional, "only provisional stories are retired"
            assert key not in out.retired
            out.retired[key] = list(r.retired.replaced_by)
        else:
            raise AssertionError(f"unexpected message before the summary: {kind}")
    live = {k: v for k, v in stories.items() if k not in out.retired}
    assert sorted(live) == sorted(summary.final_cluster_keys), "final keys != stories not retired"
    assert len(stories) == summary.clusters
    assert summary.retired_stories == len(out.retired)
    in_stories = [a for ids in live.values() for a in ids]
    assert len(in_stories) == len(set(in_stories)), "an article is in two final stories"
    for left in summary.left_out:
        assert left.reason == common_pb2.LEFT_OUT_REASON_CLUSTER_TOO_SMALL, left
        assert left.detail
    out.left_out = {left.article_id for left in summary.left_out}
    assert len(out.left_out) == len(summary.left_out) == summary.unclustered_articles
    assert not out.left_out & set(in_stories), "an article both in a story and left out"
    assert out.left_out | set(in_stories) == input_ids, "articles neither in a story nor left out"
    assert summary.articles == len(input_ids)
    for key, replaced_by in out.retired.items():
        assert set(replaced_by) <= set(live), f"{key} replaced by a cluster that is not final"
        covered = set().union(*(live[k] for k in replaced_by)) if replaced_by else set()
        assert stories[key] <= covered | out.left_out
    out.final = live
    return out


async def until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Wait for a condition that no event announces (a server's counter), checking every 10 ms."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - a counter of another server: no event to await
            await asyncio.sleep(0.01)
    assert condition(), what
