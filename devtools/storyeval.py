"""How well an LLM backend writes stories: the acceptance measurement behind docs/performance.md.

Clusters a corpus the way the synthesizer does (TF-IDF, threshold 0.3, at least 2 articles), writes one
story per cluster through the synthesizer's own writer (prompt choice, structured output, grounding
check, one stricter retry, fallback) with a cold cache, and reports the share of clusters that got an
accepted LLM story, the rejection reasons, format failures and the time of each LLM call.

    python -m devtools.storyeval --corpus sample                  # the bundled sample corpus
    python -m devtools.storyeval --corpus http://127.0.0.1:PORT   # dev-news served by its serve.py
    ... --backend local (default: starts llama-server + SmolLM2, `make llm-setup`) or a base URL
    ... --prompt auto|compact|full --structured auto|json_schema|grammar|off --slots 1 --json

A corpus URL is read like the fetcher reads pages: its index lists ``/a/<id>`` pages, each parsed with the
fetcher's HTML extraction. ``--labels articles.json`` names the events of the clusters in the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devtools import localllm
from devtools.corpus.build import compose
from runtime.settings import load_settings
from services.fetcher.http import Fetched, Validators
from services.fetcher.parse import parse_html
from services.synthesizer.clustering import Doc, cluster_docs
from services.synthesizer.engine import Engine
from services.synthesizer.llm.client import ChatRequest, Completion, OpenAIClient
from services.synthesizer.settings import SynthesizerSettings
from services.synthesizer.stories.prompt import SourceArticle
from services.synthesizer.stories.writer import GenParams, StoryResult

_PAGE = re.compile(r"/a/(d-\d+)")


@dataclass
class Article:
    id: str
    title: str
    text: str


def sample_articles() -> list[Article]:
    return [Article(i.path, i.title, i.text) for i in compose()]


def served_articles(base: str) -> list[Article]:
    """Every /a/<id> page the corpus server links from its feeds, parsed with the fetcher's extraction."""
    out: list[Article] = []
    with httpx.Client(timeout=10, trust_env=False) as http:
        ids: set[str] = set()
        for n in range(1, 10):
            feed = http.get(f"{base}/feed-{n}.xml")
            if feed.status_code != 200:
                break
            ids.update(_PAGE.findall(feed.text))
        for aid in sorted(ids):
            page = http.get(f"{base}/a/{aid}")
            fetched = Fetched(str(page.url), 200, "text/html", "utf-8", page.content, Validators())
            entry = parse_html(fetched)
            out.append(Article(aid, entry.title, entry.text))
    return out


class TimedClient(OpenAIClient):
    """The synthesizer's client, recording the latency and text of every completion."""

    calls: list[Completion]

    async def complete(self, request: ChatRequest) -> Completion:
        completion = await super().complete(request)
        self.calls.append(completion)
        # the answer as written, under the first line of its prompt ("Article 1: <headline>")
        print("ANSWER " + json.dumps({"prompt": request.messages[-1][1].split("\n", 1)[0],
                                      "text": completion.text}), file=sys.stderr, flush=True)  # fmt: skip
        return completion


async def evaluate(
    articles: list[Article], base_url: str, model: str, overrides: dict[str, Any], limit: int | None = None
) -> dict[str, Any]:
    docs = [Doc.of(a.id, a.title, a.text, a.id) for a in articles]
    clusters = [c for c in cluster_docs(docs, 0.3) if len(c.docs) >= 2][:limit]
    settings = load_settings(SynthesizerSettings, llm_base_url=base_url, llm_model=model,
                             log_level="WARNING", **overrides)  # fmt: skip
    engine = Engine(settings)
    client = TimedClient(base_url, read_timeout=300, total_timeout=600)
    client.calls = []
    engine.writer.client = client
    assert engine.writer.caller is not None
    engine.writer.caller.client = client
    engine.writer.planner.client = client
    params = GenParams(model, settings.llm_max_tokens, settings.llm_temperature)
    started = time.perf_counter()

    async def one(cluster: Any) -> StoryResult:
        sources = [SourceArticle(d.id, d.title, d.text, d.id) for d in cluster.docs]
        result = await engine.writer.write(sources, params)
        # one line per story as it is written, so that an interrupted run still reports what it measured
        line = {"ids": [d.id for d in cluster.docs], "accepted": not result.fallback,
                "rejections": result.rejection_reasons, "title": result.title, "summary": result.summary,
                "sources": [d.title for d in cluster.docs],
                "calls_s": [round(c.latency_s, 2) for c in client.calls]}  # fmt: skip
        print("STORY " + json.dumps(line), file=sys.stderr, flush=True)
        return result

    async with engine:
        results: list[StoryResult] = await asyncio.gather(*(one(c) for c in clusters))
        elapsed = time.perf_counter() - started
        plan = await engine.writer.planner.plan()
        await client.aclose()
    reasons: Counter[str] = Counter(r for res in results for r in res.rejection_reasons)
    latencies = [c.latency_s for c in client.calls]
    accepted = sum(1 for r in results if not r.fallback)
    return {
        "plan": plan.version,
        "clusters": len(clusters),
        "accepted": accepted,
        "acceptance": round(accepted / max(1, len(clusters)), 3),
        "llm_calls": len(latencies),
        "format_failures": reasons.get("format", 0),
        "rejection_reasons": dict(reasons.most_common()),
        "median_call_s": round(statistics.median(latencies), 2) if latencies else None,
        "mean_prompt_tokens": round(statistics.mean(c.prompt_tokens for c in client.calls), 1)
        if latencies
        else None,
        "mean_completion_tokens": round(statistics.mean(c.completion_tokens for c in client.calls), 1)
        if latencies
        else None,
        "elapsed_s": round(elapsed, 1),
        "stories": [
            {
                "article_ids": [d.id for d in c.docs],
                "titles": [d.title for d in c.docs],
                "title": r.title,
                "summary": r.summary,
                "accepted": not r.fallback,
                "reason": r.fallback_reason,
                "rejections": r.rejection_reasons,
            }
            for c, r in zip(clusters, results, strict=True)
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.storyeval", description=__doc__)
    parser.add_argument("--corpus", default="sample", help="sample, or the base URL of a served corpus")
    parser.add_argument(
        "--backend", default="local", help="local (llama-server + SmolLM2) or a base URL (…/v1)"
    )
    parser.add_argument("--model", default=localllm.MODEL_NAME)
    parser.add_argument("--prompt", default="auto", choices=["auto", "compact", "full"])
    parser.add_argument(
        "--structured", default="auto", choices=["auto", "json_schema", "grammar", "grounded", "off"]
    )
    parser.add_argument("--slots", type=int, default=1, help="llama-server slots (and concurrent calls)")
    parser.add_argument("--labels", type=Path, help="articles.json: names each cluster's event in the report")
    parser.add_argument("--clusters", type=int, default=0, help="only the first N clusters (0 = all)")
    parser.add_argument("--json", action="store_true", help="print the whole report, stories included")
    args = parser.parse_args()
    articles = sample_articles() if args.corpus == "sample" else served_articles(args.corpus.rstrip("/"))
    overrides: dict[str, Any] = {"llm_prompt": args.prompt, "llm_structured_output": args.structured,
                                 "llm_max_workers": args.slots}  # fmt: skip
    # a SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the llama-server below is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = None
    base_url = args.backend
    if args.backend == "local":
        server = localllm.LocalLLM(Path(tempfile.mkdtemp(prefix="storywire-eval-")), slots=args.slots)
        base_url = server.up()
    try:
        report = asyncio.run(evaluate(articles, base_url, args.model, overrides, args.clusters or None))
    finally:
        if server is not None:
            server.down()
    if args.labels:
        event = {a["id"]: a["event"] for a in json.loads(args.labels.read_text())}
        for story in report["stories"]:
            story["events"] = sorted({event.get(i, "?") for i in story["article_ids"]})
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        brief = {k: v for k, v in report.items() if k != "stories"}
        print(json.dumps(brief, indent=2))
        for s in report["stories"]:
            mark = "ACCEPTED" if s["accepted"] else "rejected: " + ", ".join(s["rejections"])
            print(f"\n[{mark}] {s['title']}\n  {s['summary']}\n  sources: {' | '.join(s['titles'][:4])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
