"""Clustering quality and cost, every backend at its default threshold, on labelled corpora: the sample
(154 articles, 14 events) and dev-news (``../shared/corpora/dev-news``, skipped with a message where it
is absent: 113 articles, 16 events + 12 singletons, teaser feeds), whose text comes from the fetcher
service reading its served feeds and pages, as a job gets it. Quality: ARI, purity, share of the
articles of multi-article events left out of every story, stories that merge events, events split
over stories. Cost: CPU per article of one cold clustering (process time, so BLAS threads count;
the embeddings backend's includes encoding every article, model load reported apart).

Also: the fetch stage on dev-news with feed text only and with full text (wall time and the fetcher
process's CPU), the events backend at 1,000 and 10,000 synthetic articles (the cost ratio per
article), and dev-news end to end through store, fetcher and synthesizer with default settings (the
obedient LLM simulator writes the stories). ``--quick`` leaves out the dev-news halves and the
embeddings backend on dev-news."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence

import grpc
from storywire.v1 import common_pb2, fetcher_pb2, fetcher_pb2_grpc, store_pb2, store_pb2_grpc

from bench.env import BenchEnv
from bench.pipeline import cpu_seconds, run_job
from bench.procs import simulator, start_services
from bench.report import Row
from devtools.corpus import devnews
from devtools.corpus.build import compose
from devtools.corpus.quality import story_quality
from devtools.corpus.synthetic import synthetic_article
from devtools.health import wait_healthy
from devtools.services import ServiceProcess
from services.synthesizer.clustering import ClusterBackend, Doc, TfidfBackend
from services.synthesizer.clustering.embeddings import EmbeddingsUnavailableError, MiniLMEncoder
from services.synthesizer.clustering.events import EventBackend
from services.synthesizer.session import doc_of as job_doc_of

Corpus = tuple[str, list[Doc], dict[str, str]]  # name, documents, id -> event


def _backends() -> list[tuple[str, Callable[[], ClusterBackend]]]:
    found: list[tuple[str, Callable[[], ClusterBackend]]] = [
        ("events (default)", EventBackend),
        ("tfidf", TfidfBackend),
    ]
    try:
        from services.synthesizer.clustering.dense import EmbeddingBackend  # an optional extra

        start = time.perf_counter()
        encoder = MiniLMEncoder()
        print(f"clustering: embeddings model loaded in {time.perf_counter() - start:.2f} s")
        found.append(("embeddings", lambda: EmbeddingBackend(encoder)))  # fresh cache: encoding counts
    except (ImportError, EmbeddingsUnavailableError) as exc:
        print(f"clustering: embeddings backend skipped: {exc}")
    return found


def measure(corpus: Corpus, label: str, backend: ClusterBackend) -> Row:
    name, docs, truth = corpus
    cpu, wall = time.process_time(), time.perf_counter()
    clusters = backend.cluster(docs, backend.default_threshold)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    q = story_quality(truth, [[d.id for d in c.docs] for c in clusters])
    notes = (
        f"{name}: ARI {q.ari:.3f}, purity {q.purity:.3f}, left out {q.left_out:.1%}, merged {q.merged}, "
        f"split {q.split}; {cpu / len(docs) * 1000:.2f} ms CPU/article; threshold {backend.default_threshold}"
    )
    extra = {**vars(q), "corpus": name, "cpu_ms_per_article": cpu / len(docs) * 1000}
    if name.startswith("dev-news"):
        notes += "\n    " + "\n    ".join(
            devnews.hard_case_report(truth, [[d.id for d in c.docs] for c in clusters])
        )
    return Row("clustering", f"{label} on {name}", wall, len(docs), "articles", notes=notes, extra=extra)


def doc_of(article: common_pb2.Article) -> Doc:
    """The document a job would cluster (publication time included), named by its dev-news id."""
    return dataclasses.replace(job_doc_of(article), id=devnews.article_id_of(article.canonical_url))


async def fetch_devnews(base: str, full_text: common_pb2.FullText.ValueType) -> tuple[list[Doc], Row]:
    """dev-news's six feeds through a fresh fetcher process: its articles, and a row with the fetch
    stage's wall time and the fetcher's CPU."""
    proc = ServiceProcess(
        "fetcher", env={"STORYWIRE_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "STORYWIRE_LOG_LEVEL": "WARNING"}
    ).start()
    try:
        await wait_healthy(proc.address, "fetcher")
        assert proc.proc is not None
        cpu = cpu_seconds(proc.proc.pid)
        request = fetcher_pb2.FetchRequest(
            urls=devnews.feed_urls(base), options=fetcher_pb2.FetchOptions(full_text=full_text)
        )
        async with grpc.aio.insecure_channel(proc.address) as channel:
            start = time.perf_counter()
            responses = [r async for r in fetcher_pb2_grpc.FetcherServiceStub(channel).Fetch(request)]
            wall = time.perf_counter() - start
        cpu = cpu_seconds(proc.proc.pid) - cpu
    finally:
        proc.terminate(15)
    articles = [r.article for r in responses if r.WhichOneof("item") == "article"]
    s = responses[-1].summary
    docs = [doc_of(a) for a in articles]
    mode = common_pb2.FullText.Name(full_text).removeprefix("FULL_TEXT_")
    words = sum(len(d.text.split()) for d in docs) / max(len(docs), 1)
    notes = (
        f"fetcher CPU {cpu:.2f} s ({cpu / max(len(docs), 1) * 1000:.1f} ms/article); "
        f"{words:.0f} words/article; pages read {s.pages_fetched}, failed {s.pages_failed}"
    )
    row = Row("clustering", f"fetch dev-news, full text {mode}", wall, len(docs), "articles", notes=notes,
              extra={"fetcher_cpu_s": cpu, "words_per_article": words})  # fmt: skip
    return docs, row


async def end_to_end(env: BenchEnv, base: str, truth: dict[str, str], **settings: str) -> Row:
    """One job over dev-news's feeds through store, fetcher and synthesizer, at their defaults but for
    ``settings`` (environment variables)."""
    with simulator() as llm_url:
        procs, addresses = await start_services(env, llm_url, **settings)
        try:
            spec = common_pb2.JobSpec(urls=devnews.feed_urls(base), name="bench dev-news")
            async with grpc.aio.insecure_channel(addresses["store"]) as channel:
                store = store_pb2_grpc.StoreServiceStub(channel)
                job, wall = await run_job(store, spec)
                listed = await store.ListStories(store_pb2.ListStoriesRequest(job_id=job.id, page_size=1000))
                ids = sorted({a for s in listed.stories for a in s.article_ids})
                got = await store.BatchGetArticles(store_pb2.BatchGetArticlesRequest(article_ids=ids))
        finally:
            for proc in reversed(procs):
                proc.terminate(15)
    label = {a.id: devnews.article_id_of(a.canonical_url) for a in got.articles}
    stories = [[label[a] for a in s.article_ids] for s in listed.stories]
    in_story = {a for s in stories for a in s}
    clusters = stories + [[a] for a in sorted(truth) if a not in in_story]  # the rest: left out
    q = story_quality(truth, clusters)
    notes = (
        f"{len(stories)} stories; ARI {q.ari:.3f}, purity {q.purity:.3f}, left out {q.left_out:.1%}, "
        f"merged {q.merged}, split {q.split}\n    " + "\n    ".join(devnews.hard_case_report(truth, clusters))
    )
    variant = "dev-news end to end " + (
        ", ".join(f"{k}={v}" for k, v in settings.items()) or "(default settings)"
    )
    return Row("clustering", variant, wall, len(truth), "articles", notes=notes, extra=vars(q))


def scale(sizes: Sequence[int]) -> list[Row]:
    """CPU per article of the events backend on synthetic corpora (10 articles per event)."""
    rows = []
    for n in sizes:
        docs = [Doc.of(f"{k:06d}", *synthetic_article(*divmod(k, 10)), f"h{k}") for k in range(n)]
        truth = {d.id: str(int(d.id) // 10) for d in docs}
        for label, backend in (("events (default)", EventBackend()), ("tfidf", TfidfBackend())):
            row = measure((f"synthetic {n}", docs, truth), label, backend)
            row.notes = row.notes.split("; threshold")[0]
            rows.append(row)
    return rows


async def run(env: BenchEnv) -> list[Row]:
    items = compose()
    sample: Corpus = (
        "sample",
        [Doc.of(i.path, i.title, i.text, i.path, i.published.timestamp()) for i in items],
        {i.path: i.event for i in items},
    )
    corpora = [sample]
    rows: list[Row] = []
    reason = devnews.available()
    if reason is None:
        every = {a.id: a.event for a in devnews.articles()}
        with devnews.serving() as base:
            teasers, row_off = await fetch_devnews(base, common_pb2.FULL_TEXT_OFF)
            full, row_auto = await fetch_devnews(base, common_pb2.FULL_TEXT_AUTO)
            rows += [row_off, row_auto]
            # the second: clustering only at the input's end, apart from early release's timing
            e2e = [await end_to_end(env, base, every),
                   await end_to_end(env, base, every, STORYWIRE_CLUSTER_RELEASE_IDLE_MS="0")]  # fmt: skip
        calibration = {a.id for a in devnews.calibration_half(devnews.articles())}
        corpora += [
            ("dev-news", full, every),
            ("dev-news calibration half", [d for d in full if d.id in calibration],
             {a: e for a, e in every.items() if a in calibration}),
            ("dev-news held-back half", [d for d in full if d.id not in calibration],
             {a: e for a, e in every.items() if a not in calibration}),
        ]  # fmt: skip
        rows.append(measure(("dev-news teasers only", teasers, every), "events (default)", EventBackend()))
    else:
        print(f"clustering: {reason}; dev-news rows skipped")
    if env.quick:  # CI runs the harness: the halves apart and the embeddings on dev-news take minutes
        corpora = corpora[:2]
    for label, make in _backends():
        chosen = [sample] if env.quick and label == "embeddings" else corpora
        rows += [measure(corpus, label, make()) for corpus in chosen]
    rows += await asyncio.to_thread(scale, (env.size(1_000, 200), env.size(10_000, 2_000)))
    if reason is None:
        rows += e2e
    return rows
