"""What every peer shares: the clusters to write and the request for one cluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.synthesizer.stories.prompt import SourceArticle, build_messages


def payload(cluster: Sequence[SourceArticle], model: str) -> dict[str, Any]:
    """The same chat completion request storywire sends for a cluster."""
    return {
        "model": model,
        "messages": [{"role": r, "content": c} for r, c in build_messages(cluster)],
        "max_tokens": 300,
        "temperature": 0.2,
    }
