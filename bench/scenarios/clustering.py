"""Clustering backends on the labelled sample corpus (154 articles, 14 events): TF-IDF (the default)
against sentence embeddings (all-MiniLM-L6-v2 run with numpy), each at its default threshold. Quality is
the adjusted Rand index and purity against the labels; time is for one cold run (the embeddings
backend's includes encoding every article; loading the model is reported apart). TF-IDF reports the
median of 5 runs."""

from __future__ import annotations

import statistics
import time

from bench.env import BenchEnv
from bench.report import Row
from devtools.corpus.build import compose
from devtools.corpus.quality import adjusted_rand_index, purity
from services.synthesizer.clustering import ClusterBackend, Doc, TfidfBackend
from services.synthesizer.clustering.dense import EmbeddingBackend
from services.synthesizer.clustering.embeddings import EmbeddingsUnavailableError


def measure(name: str, backend: ClusterBackend, note: str = "", runs: int = 1) -> Row:
    items = compose()
    docs = [Doc.of(i.path, i.title, i.text, i.path) for i in items]
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        clusters = backend.cluster(docs, backend.default_threshold)
        walls.append(time.perf_counter() - start)
    wall = statistics.median(walls)
    if runs > 1:
        note += f"; median of {runs} runs"
    predicted = {d.id: c.key for c in clusters for d in c.docs}
    truth, guess = [i.event for i in items], [predicted[d.id] for d in docs]
    ari, pur = adjusted_rand_index(truth, guess), purity(truth, guess)
    notes = (
        f"threshold {backend.default_threshold}; {len(clusters)} clusters for 14 events; "
        f"ARI {ari:.3f}, purity {pur:.3f}{note}"
    )
    extra = {"ari": ari, "purity": pur, "clusters": len(clusters)}
    return Row("clustering", name, wall, len(docs), "articles", notes=notes, extra=extra)


async def run(env: BenchEnv) -> list[Row]:
    # TF-IDF takes milliseconds, so one pause (a GC pass after the scale scenario) shows: median of 5
    rows = [measure("TF-IDF (default)", TfidfBackend(), runs=5)]
    try:
        start = time.perf_counter()
        backend = EmbeddingBackend()
        load = time.perf_counter() - start
    except EmbeddingsUnavailableError as exc:
        print(f"clustering: embeddings backend skipped: {exc}")
        return rows
    rows.append(measure("embeddings (MiniLM, numpy)", backend, f"; model load {load:.2f} s"))
    return rows
