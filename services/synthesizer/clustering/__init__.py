"""Clustering: groups articles into clusters, one cluster per story. Backends: events (the default,
:mod:`services.synthesizer.clustering.events`), TF-IDF (:mod:`.tfidf`, which also holds ``Doc``,
``Cluster`` and the ``ClusterBackend`` protocol) and sentence embeddings
(:mod:`services.synthesizer.clustering.dense`, an optional extra imported only when chosen)."""

from services.synthesizer.clustering.stream import FinalOutcome, Retirement, StreamClusterer
from services.synthesizer.clustering.tfidf import (
    Cluster,
    ClusterBackend,
    Doc,
    TfidfBackend,
    cluster_docs,
    cluster_key,
)

__all__ = [
    "Cluster",
    "ClusterBackend",
    "Doc",
    "FinalOutcome",
    "Retirement",
    "StreamClusterer",
    "TfidfBackend",
    "cluster_docs",
    "cluster_key",
]
