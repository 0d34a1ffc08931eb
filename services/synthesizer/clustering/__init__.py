"""Clustering: groups articles into clusters, one cluster per story (TF-IDF here; sentence embeddings in
:mod:`services.synthesizer.clustering.dense`, an optional extra imported only when chosen)."""

from services.synthesizer.clustering.tfidf import (
    Cluster,
    ClusterBackend,
    Doc,
    StreamClusterer,
    TfidfBackend,
    cluster_docs,
    cluster_key,
)

__all__ = [
    "Cluster",
    "ClusterBackend",
    "Doc",
    "StreamClusterer",
    "TfidfBackend",
    "cluster_docs",
    "cluster_key",
]
