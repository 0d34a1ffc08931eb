"""Peer: a plain loop, one blocking request at a time (the original system before any tuning)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.peers.common import JSON_HEADERS, PeerRun, Story, Work, retry_after


def post(client: httpx.Client, body: bytes, run: PeerRun) -> Any:
    """One completion's JSON body; a 429 is retried after its Retry-After."""
    while True:
        reply = client.post("/chat/completions", content=body, headers=JSON_HEADERS)
        if reply.status_code != 429:
            reply.raise_for_status()
            return reply.json()
        run.rejected_429 += 1
        time.sleep(retry_after(reply.headers.get("retry-after")))


def write(client: httpx.Client, story: Story, run: PeerRun) -> None:
    """Requests until the story is settled (storywire's policy: ``Story``)."""
    while not story.done:
        story.take(post(client, story.body, run))
    run.settled(story)


def run(base_url: str, work: Work) -> PeerRun:
    out = PeerRun()
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for story in out.cluster(work):
            write(client, story, out)
    return out
