"""The Synthesize stream over real gRPC: config first, clusters and stories streamed, a summary last."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from storywire.v1 import common_pb2, synthesizer_pb2, synthesizer_pb2_grpc

from devtools.corpus.build import compose
from runtime.ids import article_id, content_hash
from runtime.server import start_server
from runtime.stubs import SynthesizerStub as Stub
from services.synthesizer.service import SynthesizerService
from services.synthesizer.session import doc_of
from tests.synthesizer.conftest import Sim, settings_for
from tests.synthesizer.sessionkit import settle

pytestmark = pytest.mark.integration


def corpus_articles() -> list[common_pb2.Article]:
    out = []
    for item in compose():
        digest = content_hash(item.title, item.text)
        canonical = "http://sample.test" + item.path
        out.append(
            common_pb2.Article(
                id=article_id(canonical, digest), url=canonical, canonical_url=canonical, content_hash=digest,
                title=item.title, text=item.text,
            )
        )  # fmt: skip
    return out


async def requests(
    config: synthesizer_pb2.SynthesisConfig, articles: list[common_pb2.Article], batch: int = 0
) -> AsyncIterator[synthesizer_pb2.SynthesizeRequest]:
    """The config, then one message per article, or per `batch` articles."""
    yield synthesizer_pb2.SynthesizeRequest(config=config)
    if batch:
        for i in range(0, len(articles), batch):
            chunk = common_pb2.ArticleBatch(articles=articles[i : i + batch])
            yield synthesizer_pb2.SynthesizeRequest(batch=chunk)
        return
    for a in articles:
        yield synthesizer_pb2.SynthesizeRequest(article=a)


async def test_stream_of_corpus_gives_one_story_per_cluster(sim: Sim) -> None:
    service = SynthesizerService(settings_for(sim.url))
    handle = await start_server(service, service.settings, 0)
    try:
        async with grpc.aio.insecure_channel(handle.address) as channel:
            stub: Stub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
            config = synthesizer_pb2.SynthesisConfig(job_id="job-1", min_articles_per_story=2)
            responses = [r async for r in stub.Synthesize(requests(config, corpus_articles()))]
            stats = await stub.GetCacheStats(synthesizer_pb2.GetCacheStatsRequest())
            # the same articles in batches of 40 (the last one short)
            again = [r async for r in stub.Synthesize(requests(config, corpus_articles(), 40))]
    finally:
        await handle.stop()
    clusters = [r.cluster for r in responses if r.WhichOneof("item") == "cluster"]
    stories = [r.story for r in responses if r.WhichOneof("item") == "story"]
    summary = responses[-1].summary
    assert len(clusters) == len(stories) == summary.clusters == 14
    assert {s.cluster_key for s in stories} == {c.key for c in clusters}
    assert not any(s.fallback for s in stories)
    assert summary.totals.llm_calls == 14 == sim.sim.stats.completed
    assert summary.articles == 154
    assert stats.tiers[0].writes == 14
    # the same job again: every story from the cache, no LLM call
    assert again[-1].summary.articles == 154
    assert again[-1].summary.totals.cache_hits == 14
    assert again[-1].summary.totals.llm_calls == 0
    assert sim.sim.stats.completed == 14


async def test_protocol_errors_are_invalid_argument(sim: Sim) -> None:
    service = SynthesizerService(settings_for(sim.url))
    handle = await start_server(service, service.settings, 0)
    try:
        async with grpc.aio.insecure_channel(handle.address) as channel:
            stub: Stub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)

            async def article_first() -> AsyncIterator[synthesizer_pb2.SynthesizeRequest]:
                yield synthesizer_pb2.SynthesizeRequest(article=corpus_articles()[0])

            with pytest.raises(grpc.aio.AioRpcError) as info:
                _ = [r async for r in stub.Synthesize(article_first())]
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

            async def empty_second() -> AsyncIterator[synthesizer_pb2.SynthesizeRequest]:
                yield synthesizer_pb2.SynthesizeRequest(config=synthesizer_pb2.SynthesisConfig())
                yield synthesizer_pb2.SynthesizeRequest()

            with pytest.raises(grpc.aio.AioRpcError) as info:
                _ = [r async for r in stub.Synthesize(empty_second())]
            assert info.value.details() == "message 1: carries neither `article` nor `batch`"
            bad = synthesizer_pb2.SynthesisConfig(similarity_threshold=3)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                _ = [r async for r in stub.Synthesize(requests(bad, []))]
            assert info.value.details() == "stream[0].config.similarity_threshold: 3.0 is outside [0.01, 1.0]"
    finally:
        await handle.stop()


async def test_a_client_stream_that_pauses_is_read_to_its_end(sim: Sim) -> None:
    """The default release interval passes while the client stream is quiet: provisional stories come
    back during the pause, and the rest of the stream is still read (the timer never touches it)."""
    service = SynthesizerService(settings_for(sim.url, worker_enabled=False))
    handle = await start_server(service, service.settings, 0)
    articles = corpus_articles()
    first_story = asyncio.Event()

    async def paused() -> AsyncIterator[synthesizer_pb2.SynthesizeRequest]:
        yield synthesizer_pb2.SynthesizeRequest(config=synthesizer_pb2.SynthesisConfig(job_id="paused"))
        for a in articles[:100]:
            yield synthesizer_pb2.SynthesizeRequest(article=a)
        await asyncio.wait_for(first_story.wait(), 60)  # quiet until a story has come back
        for a in articles[100:]:
            yield synthesizer_pb2.SynthesizeRequest(article=a)

    responses = []
    try:
        async with grpc.aio.insecure_channel(handle.address) as channel:
            stub: Stub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
            async for r in stub.Synthesize(paused()):
                responses.append(r)
                if r.WhichOneof("item") == "story":
                    first_story.set()
    finally:
        await handle.stop()
    settled = settle(responses, {a.id for a in articles})
    assert settled.provisional, "the pause released provisional clusters"
    assert len(settled.final) == 14
    backend = service.engine.cluster_backend  # the final stories: all the articles clustered at once
    at_once = backend.cluster([doc_of(a) for a in articles], backend.default_threshold)
    assert settled.final == {c.key: frozenset(d.id for d in c.docs) for c in at_once if len(c.docs) >= 2}
