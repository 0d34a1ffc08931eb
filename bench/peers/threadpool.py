"""Peer: ThreadPoolExecutor(3), as the original system did."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.peers.common import payload
from services.synthesizer.stories.prompt import SourceArticle


def run(
    base_url: str, clusters: Sequence[Sequence[SourceArticle]], model: str, workers: int = 3
) -> list[str]:
    with httpx.Client(base_url=base_url, timeout=120) as client:

        def one(cluster: Sequence[SourceArticle]) -> str:
            reply = client.post("/chat/completions", json=payload(cluster, model))
            reply.raise_for_status()
            text: str = reply.json()["choices"][0]["message"]["content"]
            return text

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, clusters))
