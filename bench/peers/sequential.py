"""Peer: a plain loop, one blocking request per cluster (the original system before any tuning)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from bench.peers.common import PeerRun, payload, retry_after
from services.synthesizer.stories.prompt import SourceArticle


def post(client: httpx.Client, body: dict[str, object], run: PeerRun) -> str:
    """One completion; a 429 is retried after its Retry-After."""
    while True:
        reply = client.post("/chat/completions", json=body)
        if reply.status_code != 429:
            reply.raise_for_status()
            return run.answered(reply.json()["choices"][0]["message"]["content"])
        run.rejected_429 += 1
        time.sleep(retry_after(reply.headers.get("retry-after")))


def run(base_url: str, clusters: Sequence[Sequence[SourceArticle]], model: str) -> PeerRun:
    out = PeerRun()
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for cluster in clusters:
            post(client, payload(cluster, model), out)
    return out
