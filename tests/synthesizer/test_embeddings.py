"""The optional embeddings backend: the numpy MiniLM encoder against sentence-transformers' own output,
clustering quality on the labelled sample, and a synthesis stream that clusters with it."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from storywire.v1 import common_pb2, synthesizer_pb2

from devtools.corpus.build import compose
from devtools.corpus.quality import adjusted_rand_index, purity
from services.synthesizer.clustering import Doc
from services.synthesizer.clustering.embeddings import EmbeddingsUnavailableError, MiniLMEncoder
from tests.synthesizer.conftest import Sim, engine_for
from tests.synthesizer.test_service import corpus_articles

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"

try:
    from services.synthesizer.clustering.dense import EmbeddingBackend

    ENCODER: MiniLMEncoder | None = MiniLMEncoder()
    MISSING = ""
except EmbeddingsUnavailableError as exc:  # the optional extra is not installed
    ENCODER, MISSING = None, str(exc)

pytestmark = pytest.mark.skipif(ENCODER is None, reason=f"embeddings backend unavailable: {MISSING}")


@pytest.fixture(scope="module")
def backend() -> EmbeddingBackend:
    return EmbeddingBackend(ENCODER)  # one instance: each sample article is embedded once


def test_encoder_matches_sentence_transformers() -> None:
    """The reference vectors were computed once with sentence-transformers (see the file's source)."""
    reference = json.loads(REFERENCE.read_text())
    assert ENCODER is not None
    vectors = ENCODER.encode(reference["texts"])
    for got, want in zip(vectors, reference["embeddings"], strict=True):
        assert max(abs(float(g) - w) for g, w in zip(got, want, strict=True)) < 1e-5
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-5


def test_quality_and_determinism_on_the_labelled_sample(backend: EmbeddingBackend) -> None:
    items = compose()
    docs = [Doc.of(i.path, i.title, i.text, i.path) for i in items]
    clusters = backend.cluster(docs, backend.default_threshold)
    predicted = {d.id: c.key for c in clusters for d in c.docs}
    truth, guess = [i.event for i in items], [predicted[d.id] for d in docs]
    ari, pur = adjusted_rand_index(truth, guess), purity(truth, guess)
    print(f"\nembeddings: clusters={len(clusters)} ARI={ari:.3f} purity={pur:.3f}")
    assert ari >= 0.9
    shuffled = docs[:]
    random.Random(5).shuffle(shuffled)
    again = backend.cluster(shuffled, backend.default_threshold)
    assert {(c.key, tuple(d.id for d in c.docs)) for c in again} == {
        (c.key, tuple(d.id for d in c.docs)) for c in clusters
    }


@pytest.mark.integration
async def test_a_synthesis_session_clusters_with_embeddings(sim: Sim) -> None:
    async with engine_for(sim.url, cluster_backend="embeddings") as engine:
        assert engine.cluster_backend.name == "embeddings"
        session = engine.session(synthesizer_pb2.SynthesisConfig(job_id="emb"))
        assert session.config.threshold == 0.5  # the backend's default, not TF-IDF's 0.3

        async def articles() -> AsyncIterator[common_pb2.Article]:
            for a in corpus_articles():
                yield a

        responses = [r async for r in session.run(articles())]
    stories = [r.story for r in responses if r.WhichOneof("item") == "story"]
    assert len(stories) == 14
    assert responses[-1].summary.articles == 154


async def test_concurrent_releases_share_one_backend() -> None:
    """Streams release in worker threads at the same time; the remembered embeddings stay consistent."""
    backend = EmbeddingBackend(ENCODER)  # fresh: every release embeds its articles
    items = compose()
    groups = [
        [Doc.of(i.path, i.title, i.text, i.path) for i in items if i.event == event]
        for event in sorted({i.event for i in items})
    ]
    results = await asyncio.gather(
        *(asyncio.to_thread(backend.cluster, group, backend.default_threshold) for group in groups)
    )
    assert [len(r) for r in results] == [1] * len(groups)  # each event's articles stay one cluster
    assert len(backend._remembered) == len(items)
