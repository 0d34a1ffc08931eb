"""Clustering: groups articles into clusters, one cluster per story (TF-IDF here; sentence embeddings in
:mod:`services.synthesizer.clustering.dense`, an optional extra imported only when chosen)."""

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
