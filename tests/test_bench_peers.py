"""The peers do storywire's work: on the sample corpus they make storywire's clusters, send storywire's
requests byte for byte (the first prompt and the stricter one), and settle each story as storywire does
(accepted, regenerated, or the extractive fallback); and the adaptive scenario's synthetic events are
told apart by the default clustering, as the sample's real events are."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from storywire.v1 import common_pb2, synthesizer_pb2

from bench.peers import oracle, sequential
from bench.peers.common import PeerRun, Work, cluster_articles, probe_plan
from bench.scenarios.seed import corpus_articles
from bench.synthevents import event_articles
from devtools.llmsim import story_for
from services.synthesizer.stories.prompt import STRICT_SUFFIX
from tests.synthesizer.conftest import engine_for

MODEL = "sim-1"  # the model engine_for's synthesizer sends


@dataclass
class Backend:
    """A chat completion backend that keeps every request body as received and answers by the cluster
    (so storywire and a peer get the same answer to the same request, whatever the order): a third of
    the clusters always get an invented fact, a third only to the first prompt, a third never."""

    bodies: list[bytes] = field(default_factory=list)

    async def chat(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.bodies.append(raw)
        messages = json.loads(raw)["messages"]
        system, user = messages[0]["content"], messages[-1]["content"]
        kind = int(hashlib.sha256(user.encode()).hexdigest(), 16) % 3
        invent = kind == 0 or (kind == 1 and STRICT_SUFFIX not in system)
        title, summary = story_for(user, invent)
        answer = json.dumps({"title": title, "summary": summary})
        return web.json_response(
            {"choices": [{"message": {"role": "assistant", "content": answer}}],
             "usage": {"prompt_tokens": len(user) // 4, "completion_tokens": len(answer) // 4}}
        )  # fmt: skip


@pytest.fixture
async def backend() -> AsyncIterator[tuple[Backend, str]]:
    state = Backend()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield state, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


async def storywire(url: str, articles: Sequence[common_pb2.Article]) -> list[common_pb2.Story]:
    """The stories of a synthesizer session with the shipped settings (only the backend and model set)."""
    async with engine_for(url) as engine:

        async def arriving() -> AsyncIterator[common_pb2.Article]:
            for article in articles:
                yield article

        session = engine.session(synthesizer_pb2.SynthesisConfig(job_id="bench-peers", model=MODEL))
        replies = [r async for r in session.run(arriving())]
    return [r.story for r in replies if r.WhichOneof("item") == "story"]


def settled(stories: Sequence[Any], ids: Callable[[Any], list[str]]) -> dict[frozenset[str], bool]:
    """Each story's articles -> whether it is the extractive fallback."""
    return {frozenset(ids(s)): s.fallback for s in stories}


@pytest.mark.parametrize("peer", ["oracle", "sequential"])
async def test_a_peer_clusters_asks_and_checks_as_storywire_does(
    backend: tuple[Backend, str], peer: str
) -> None:
    state, url = backend
    articles = corpus_articles()
    mine = await storywire(url, articles)
    sent_by_storywire = sorted(state.bodies)
    state.bodies.clear()
    work = Work(articles, MODEL, await probe_plan(url))
    run: PeerRun = (
        await oracle.run(url, work, 16)
        if peer == "oracle"
        else await asyncio.to_thread(sequential.run, url, work)
    )
    # the same clusters (the sample's 14 events), each settled the same way
    theirs = settled(run.stories, lambda s: [a.id for a in s.sources])
    assert len(mine) == len(run.stories) == 14
    assert settled(mine, lambda s: list(s.article_ids)) == theirs
    assert 0 < sum(theirs.values()) < len(theirs)  # some fallbacks, not all: the check ran both ways
    # byte for byte the same requests: the first prompts, and the stricter ones after a rejection
    assert sorted(state.bodies) == sent_by_storywire
    assert len(sent_by_storywire) > len(mine)
    assert b'"response_format"' in sent_by_storywire[0]  # the JSON schema storywire asks this backend for


async def test_a_peer_without_the_check_ships_its_first_answers(backend: tuple[Backend, str]) -> None:
    state, url = backend
    work = Work(corpus_articles(), MODEL, await probe_plan(url), checked=False)
    run = await oracle.run(url, work, None)
    assert len(state.bodies) == len(run.stories) == 14
    assert run.fallbacks == 0
    assert all(s.text for s in run.stories)


def test_the_adaptive_scenarios_synthetic_events_are_told_apart() -> None:
    articles = event_articles(32, "t")
    event_of = {a.id: a.url.rsplit("/", 2)[1] for a in articles}
    clusters = cluster_articles(articles)
    assert sorted(sorted(event_of[a.id] for a in c) for c in clusters) == sorted(
        [str(e), str(e)] for e in range(32)
    )
