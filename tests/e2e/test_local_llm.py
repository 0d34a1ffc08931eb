"""The real local model (llama-server + SmolLM2) behind the same client, cache and grounding check.

Skipped, with the reason, when ``make llm-setup`` has not been run on this machine."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from devtools import localllm
from devtools.corpus.build import compose
from runtime.settings import load_settings
from services.synthesizer.clustering import Doc, cluster_docs
from services.synthesizer.engine import Engine
from services.synthesizer.settings import SynthesizerSettings
from services.synthesizer.stories.prompt import SourceArticle
from services.synthesizer.stories.writer import GenParams

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not localllm.installed(), reason="local LLM not installed: run `make llm-setup`"),
]


async def test_local_model_writes_stories_that_are_grounded_or_marked() -> None:
    state = Path(tempfile.mkdtemp(prefix="storywire-llm-"))
    server = localllm.LocalLLM(state, slots=2)
    url = await asyncio.to_thread(server.up)
    try:
        settings = load_settings(SynthesizerSettings, llm_base_url=url, llm_model=localllm.MODEL_NAME,
                                 llm_max_tokens=160, log_level="WARNING")  # fmt: skip
        engine = Engine(settings)
        items = compose()
        docs = [Doc.of(i.path, i.title, i.text, i.path) for i in items]
        clusters = cluster_docs(docs, 0.3)[:2]
        params = GenParams(localllm.MODEL_NAME, 160, 0.2)
        sources = [[SourceArticle(d.id, d.title, d.text, d.content_hash) for d in c.docs] for c in clusters]
        results = await asyncio.gather(*(engine.writer.write(s, params) for s in sources))
        await engine.aclose()
    finally:
        server.down()
        shutil.rmtree(state, ignore_errors=True)
    for r in results:
        assert r.llm_calls >= 1
        assert r.title
        assert r.summary
        assert r.prompt_tokens > 0  # spent even when the answer is then rejected
        assert not r.estimated  # llama-server reports usage
        if r.fallback:  # a small model: not grounded, or not in the asked format
            assert r.fallback_reason.startswith(("grounding check failed", "LLM failed: BadResponseError"))
            assert r.model == "extractive"
        else:
            assert r.grounding_rejections <= 1
