"""What the claim loop says while the store does not answer (pipeline.coordinator.ClaimOutage, the report of
its retry policy): nothing for a brief outage (a store still connecting to PostgreSQL at start), then a
warning every 10 s, and a line when the store is back only if it warned."""

from __future__ import annotations

import logging

import grpc
import pytest

from runtime.retry import Retry
from services.synthesizer.pipeline.coordinator import ClaimOutage


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "store starting"
    )


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.endswith("coordinator")]


def test_a_brief_outage_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = ClaimOutage("127.0.0.1:1", lambda: now[0])
    with caplog.at_level(logging.INFO):
        for n in range(1, 6):  # 4 s of failed claims
            outage.report(Retry(n, 1.0, unavailable()))
            now[0] += 1.0
        outage.over()
    assert messages(caplog) == []


def test_a_lasting_outage_warns_every_ten_seconds_then_says_it_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    outage = ClaimOutage("127.0.0.1:1", lambda: now[0])
    with caplog.at_level(logging.INFO):
        for n in range(1, 32):  # 30 s of failed claims, one a second
            outage.report(Retry(n, 1.0, unavailable()))
            now[0] += 1.0
        outage.over()
    said = messages(caplog)
    warnings = [m for m in said if "cannot claim jobs: the store is unavailable" in m]
    assert len(warnings) == 3  # at 6 s, 17 s and 28 s
    assert all("UNAVAILABLE" in m and "store starting" in m for m in warnings)
    assert "the store is available again" in said[-1]
