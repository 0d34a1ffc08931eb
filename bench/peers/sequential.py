"""Peer: a plain loop, one blocking request per cluster (the original system before any tuning)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from bench.peers.common import payload
from services.synthesizer.stories.prompt import SourceArticle


def run(base_url: str, clusters: Sequence[Sequence[SourceArticle]], model: str) -> list[str]:
    out = []
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for cluster in clusters:
            reply = client.post("/chat/completions", json=payload(cluster, model))
            reply.raise_for_status()
            out.append(reply.json()["choices"][0]["message"]["content"])
    return out
