"""Peer: ThreadPoolExecutor(3), as the original system did."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.peers.common import PeerRun, Work
from bench.peers.sequential import write


def run(base_url: str, work: Work, workers: int = 3) -> PeerRun:
    out = PeerRun()
    with httpx.Client(base_url=base_url, timeout=120) as client, ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda story: write(client, story, out), out.cluster(work)))
    return out
