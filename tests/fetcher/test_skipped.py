"""The fetcher reports every entry it does not take, with the id it would have had and its reason, and
sends heartbeats on a quiet stream when asked."""

from __future__ import annotations

import pytest
from storywire.v1 import common_pb2

from runtime.stubs import FetcherStub as Fetcher
from tests.fetcher.hostile import Hostile
from tests.fetcher.test_fetch import fetch, hostile, loopback_fetcher, split

__all__ = ["hostile", "loopback_fetcher"]  # fixtures
pytestmark = pytest.mark.integration


async def test_entries_not_taken_are_reported_with_ids_and_reasons(
    loopback_fetcher: Fetcher, hostile: Hostile
) -> None:
    responses = await fetch(loopback_fetcher, [f"{hostile.base}/good.xml"], time_window_hours=24 * 365)
    articles, _, summary = split(responses)
    skipped = [e for r in responses if r.WhichOneof("item") == "skipped" for e in r.skipped.entries]
    R = common_pb2.LeftOutReason
    assert sorted(e.reason for e in skipped) == sorted(
        [R.LEFT_OUT_REASON_DUPLICATE, R.LEFT_OUT_REASON_OUT_OF_WINDOW]
    )
    assert all(e.article_id and e.detail.startswith("http") for e in skipped)
    # the duplicate has the id of the article it duplicates; the old entry an id of its own
    dup = next(e for e in skipped if e.reason == R.LEFT_OUT_REASON_DUPLICATE)
    assert dup.article_id == articles[0].id
    assert summary.entries_found == len(articles) + len(skipped) == 3


async def test_a_slow_source_gets_heartbeats_when_asked(loopback_fetcher: Fetcher, hostile: Hostile) -> None:
    slow = [f"{hostile.base}/slow"]
    responses = await fetch(loopback_fetcher, slow, timeout_seconds=2, heartbeat_seconds=0.3)
    kinds = [r.WhichOneof("item") for r in responses]
    assert kinds.count("heartbeat") >= 2, kinds
    assert kinds[-2:] == ["error", "summary"]
    quiet = await fetch(loopback_fetcher, [f"{hostile.base}/slow"], timeout_seconds=1)
    assert "heartbeat" not in [r.WhichOneof("item") for r in quiet]
