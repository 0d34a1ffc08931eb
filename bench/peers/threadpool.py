"""Peer: ThreadPoolExecutor(3), as the original system did."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.peers.common import PeerRun, payload
from bench.peers.sequential import post
from services.synthesizer.stories.prompt import SourceArticle


def run(base_url: str, clusters: Sequence[Sequence[SourceArticle]], model: str, workers: int = 3) -> PeerRun:
    out = PeerRun()
    with httpx.Client(base_url=base_url, timeout=120) as client, ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda cluster: post(client, payload(cluster, model), out), clusters))
    return out
