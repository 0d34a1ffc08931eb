"""Early release's trade-off, measured: time to first story against extra LLM calls.

The sample corpus (154 articles, 14 events) goes through one synthesis session (the real engine and
story writer) against the LLM simulator on loopback, every source at once except one feed that arrives
``--delay`` seconds late; once with early release at its default interval and once with it off
(clustering only at the end of the input). A fresh engine per run, so no answer comes from the cache.

``python -m devtools.release_tradeoff [--delay 1.5] [--latency 0.2] [--slots 8] [--slow-feed SOURCE]``;
``--corpus dev-news`` reads the shared dev-news corpus in place (113 articles, 28 events, 6 feeds; slow
feed ``6`` by default) instead. ``--corpus synthetic [--articles 3000] [--feed 250] [--gap 0.6]`` is a
long job instead: synthetic articles (10 per event, shuffled over feeds of ``--feed`` items), each feed
``--gap`` seconds after the one before, so every event still grows until the last feed (the steady
trickle of a long fetch).

Clustering is shown as time (noisy on a shared machine) and as the backend's clusterings, the final one
included, with the articles they took in all (the cost that does not depend on the machine's load).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from storywire.v1 import common_pb2, synthesizer_pb2

from devtools.corpus.build import as_article, compose
from devtools.corpus.synthetic import synthetic_article
from devtools.llmsim import SimConfig, start_simulator
from runtime.logging import configure_logging
from runtime.settings import load_settings
from services.synthesizer.clustering import Cluster, ClusterBackend, Doc
from services.synthesizer.engine import Engine
from services.synthesizer.settings import SynthesizerSettings

DEV_NEWS = Path("/work/shared/corpora/dev-news")


@dataclass
class Measured:
    release_ms: int
    first_story_s: float
    total_s: float
    llm_calls: int
    stories: int
    retired: int
    final: int
    cluster_s: float  # seconds spent clustering (early releases and the final clustering)
    clusterings: int  # the backend's clusterings, the final one included
    clustered: int  # articles over all those clusterings


class Counted:
    """A backend that counts its clusterings and the articles they take (the cost that does not depend
    on the machine's load)."""

    def __init__(self, backend: ClusterBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.default_threshold = backend.default_threshold
        self.calls = self.docs = 0

    def cluster(self, docs: Sequence[Doc], threshold: float) -> list[Cluster]:
        self.calls += 1
        self.docs += len(docs)
        return self.backend.cluster(docs, threshold)


def sample_by_source() -> dict[str, list[common_pb2.Article]]:
    out: dict[str, list[common_pb2.Article]] = {}
    for item in compose():
        source = item.path if item.page_only else item.outlet
        article = as_article("http://sample.test" + item.path, item.title, item.text, item.published)
        out.setdefault(source, []).append(article)
    return out


def devnews_by_source() -> dict[str, list[common_pb2.Article]]:
    feed = {
        aid: path.stem.split("-")[1]
        for path in (DEV_NEWS / "feeds").glob("feed-*.xml")
        for aid in re.findall(r"/a/(d-\d{3})", path.read_text())
    }
    out: dict[str, list[common_pb2.Article]] = {}
    for a in json.loads((DEV_NEWS / "articles.json").read_text()):
        out.setdefault(feed[a["id"]], []).append(
            as_article(f"http://dev-news.test/a/{a['id']}", a["title"], a["text"], _published(a["published"]))
        )
    return out


def synthetic_feeds(articles: int, per_feed: int) -> list[list[common_pb2.Article]]:
    """``articles`` synthetic articles (10 per event), shuffled as outlets mix events, in feeds of
    ``per_feed`` (deterministic for a size)."""
    out = []
    for n in range(articles):
        event, index = divmod(n, 10)
        title, text = synthetic_article(event, index)
        out.append(as_article(f"http://synthetic.test/a/{event}/{index}", title, text, None))
    random.Random(articles).shuffle(out)  # noqa: S311 - a fixed order, not security
    return [out[i : i + per_feed] for i in range(0, articles, per_feed)]


async def trickle(feeds: list[list[common_pb2.Article]], gap: float) -> AsyncIterator[common_pb2.Article]:
    """Each feed ``gap`` seconds after the one before; the input ends with the last feed."""
    for n, feed in enumerate(feeds):
        if n:
            await asyncio.sleep(gap)
        for a in feed:
            yield a


def _published(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def arrivals(
    by_source: dict[str, list[common_pb2.Article]], slow: str, delay: float
) -> AsyncIterator[common_pb2.Article]:
    for source, articles in sorted(by_source.items()):
        if source != slow:
            for a in articles:
                yield a
    await asyncio.sleep(delay)
    for a in by_source[slow]:
        yield a


async def measure(
    articles: Callable[[], AsyncIterator[common_pb2.Article]], release_ms: int, sim_url: str
) -> Measured:
    settings = load_settings(
        SynthesizerSettings, llm_base_url=sim_url, llm_model="sim-1", cluster_release_idle_ms=release_ms,
        log_level="WARNING",
    )  # fmt: skip
    async with Engine(settings) as engine:
        session = engine.session(synthesizer_pb2.SynthesisConfig(job_id=f"release-{release_ms}"))
        counted = session.clusterer.backend = Counted(session.clusterer.backend)
        started = time.perf_counter()
        responses = [r async for r in session.run(articles())]
        total = time.perf_counter() - started
    summary = responses[-1].summary
    stories = sum(1 for r in responses if r.WhichOneof("item") == "story")
    return Measured(
        release_ms, session.first_story_s or total, total, summary.totals.llm_calls, stories,
        summary.retired_stories, len(summary.final_cluster_keys), session.cluster_seconds, counted.calls,
        counted.docs,
    )  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    if args.corpus == "synthetic":
        feeds = synthetic_feeds(args.articles, args.feed)
        articles: Callable[[], AsyncIterator[common_pb2.Article]] = lambda: trickle(feeds, args.gap)  # noqa: E731
        what = f"synthetic corpus, {args.articles} articles in feeds of {args.feed}, one every {args.gap} s"
    else:
        by_source = devnews_by_source() if args.corpus == "dev-news" else sample_by_source()
        slow = args.slow_feed or ("6" if args.corpus == "dev-news" else "valmora-courier")
        articles = lambda: arrivals(by_source, slow, args.delay)  # noqa: E731
        what = f"{args.corpus} corpus, source {slow!r} {args.delay} s late"
    _, runner, url = await start_simulator(SimConfig(slots=args.slots, latency=args.latency))
    try:
        rows = [await measure(articles, ms, url) for ms in (500, 0)]
    finally:
        await runner.cleanup()
    print(f"{what}; simulator {args.slots} slots, {args.latency} s per call")
    print("| release | time to first story | all stories | LLM calls | stories written | retired | final | "
          "clustering | clusterings (articles) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in rows:
        label = f"{m.release_ms} ms (default)" if m.release_ms else "off (0)"
        print(f"| {label} | {m.first_story_s:.2f} s | {m.total_s:.2f} s | {m.llm_calls} | {m.stories} | "
              f"{m.retired} | {m.final} | {m.cluster_s:.2f} s | "
              f"{m.clusterings} ({m.clustered:,}) |")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m devtools.release_tradeoff", description=__doc__)
    parser.add_argument("--delay", type=float, default=1.5, help="seconds the slow feed arrives late")
    parser.add_argument("--latency", type=float, default=0.2, help="simulator seconds per call")
    parser.add_argument("--slots", type=int, default=8, help="simulator parallel slots")
    parser.add_argument("--slow-feed", default="", help="the late source (sample: an outlet; dev-news: 1-6)")
    parser.add_argument("--corpus", choices=["sample", "dev-news", "synthetic"], default="sample")
    parser.add_argument("--articles", type=int, default=3000, help="synthetic: articles (10 per event)")
    parser.add_argument("--feed", type=int, default=250, help="synthetic: articles per feed")
    parser.add_argument("--gap", type=float, default=0.6, help="synthetic: seconds between feeds")
    configure_logging("release-tradeoff", "WARNING", "console")
    asyncio.run(main(parser.parse_args()))
