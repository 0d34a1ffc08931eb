"""What every peer shares: the request for one cluster, a 429 that says when to come back, and the
record of a run (each answer and when it arrived)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.synthesizer.stories.prompt import SourceArticle, build_messages

#: how long to wait after a 429 without a Retry-After header
DEFAULT_RETRY_AFTER = 1.0


def payload(cluster: Sequence[SourceArticle], model: str) -> dict[str, Any]:
    """The same chat completion request storywire sends for a cluster."""
    return {
        "model": model,
        "messages": [{"role": r, "content": c} for r, c in build_messages(cluster)],
        "max_tokens": 300,
        "temperature": 0.2,
    }


def retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header (seconds, possibly fractional)."""
    try:
        return max(0.0, float(value)) if value else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


@dataclass
class PeerRun:
    """The answers of one peer run, the seconds after the start at which each arrived, and the 429s."""

    started: float = field(default_factory=time.perf_counter)
    texts: list[str] = field(default_factory=list)
    done_s: list[float] = field(default_factory=list)
    rejected_429: int = 0

    def answered(self, text: str) -> str:
        self.texts.append(text)
        self.done_s.append(time.perf_counter() - self.started)
        return text

    @property
    def first_s(self) -> float:
        return min(self.done_s) if self.done_s else 0.0
