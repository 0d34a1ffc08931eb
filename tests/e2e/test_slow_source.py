"""The default release rule on real services with a source slower than the release interval: the input
does not end at the first quiet moment, and every entry of the job is accounted for (the store checks
it over ids when the job is marked done)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from storywire.v1 import common_pb2, store_pb2

from devtools.corpus.server import CorpusServer
from tests.e2e.conftest import Deployment, Store, events_until_end, job_stories, submit, synthesizer_replaced

pytestmark = pytest.mark.integration
SLOW_FEED = "/feeds/valmora-courier.xml"
DELAY = 1.5  # seconds: three times the default release interval (500 ms)


class SlowFeedCorpus(CorpusServer):
    """The sample corpus with one feed that answers DELAY seconds late."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == SLOW_FEED:
            await asyncio.sleep(DELAY)
        return await super().handle(request)


@pytest.fixture
async def default_release(deployment: Deployment) -> AsyncIterator[None]:
    """The deployment's synthesizer replaced by one with every release setting at its default."""
    env = {k: v for k, v in deployment.env.items() if k != "STORYWIRE_CLUSTER_RELEASE_IDLE_MS"}
    async with synthesizer_replaced(deployment, env):
        yield


@pytest.mark.usefixtures("default_release")
async def test_a_slow_feed_with_the_default_release_loses_no_article(
    deployment: Deployment, store: Store
) -> None:
    corpus = SlowFeedCorpus()
    runner = await corpus.start()
    try:
        job = await submit(store, corpus.job_urls(), model="sim-slow-source")
        await asyncio.wait_for(events_until_end(store, job.id), 120)
    finally:
        await runner.cleanup()
    done = (await store.GetJob(store_pb2.GetJobRequest(job_id=job.id))).job
    assert done.state == common_pb2.JOB_STATE_DONE, done.error
    a = done.accounting
    total = corpus.manifest()["articles"]
    assert (a.entries_found, a.articles, a.balanced) == (total, total, True)
    in_stories = [i for s in await job_stories(store, job.id) for i in s.article_ids]
    too_small = {c.reason: c.entries for c in a.left_out}[common_pb2.LEFT_OUT_REASON_CLUSTER_TOO_SMALL]
    assert len(in_stories) + too_small == total  # every article in a story or left out with its reason
