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


# a 135M model on 2 cores answers in about 2 s alone, but in minutes when other llama-servers share the
# cores (0.4 tokens/s was seen): one cluster, and a generous bound
@pytest.mark.timeout(900)
async def test_local_model_writes_stories_that_are_grounded_or_marked() -> None:
    """With the defaults (prompt and format: auto), the real llama-server is probed, gets the compact
    prompt and the JSON grammar; a grammar-constrained answer can be rejected for its facts, never for
    its format."""
    state = Path(tempfile.mkdtemp(prefix="storywire-llm-"))
    server = localllm.LocalLLM(state, slots=2)
    url = await asyncio.to_thread(server.up)
    try:
        settings = load_settings(SynthesizerSettings, llm_base_url=url, llm_model=localllm.MODEL_NAME,
                                 log_level="WARNING")  # fmt: skip
        engine = Engine(settings)
        items = compose()
        docs = [Doc.of(i.path, i.title, i.text, i.path) for i in items]
        clusters = cluster_docs(docs, 0.3)[:1]
        params = GenParams(localllm.MODEL_NAME, settings.llm_max_tokens, settings.llm_temperature)
        sources = [[SourceArticle(d.id, d.title, d.text, d.content_hash) for d in c.docs] for c in clusters]
        async with engine:
            results = await asyncio.gather(*(engine.writer.write(s, params) for s in sources))
            info = engine.writer.planner.info
    finally:
        server.down()
        shutil.rmtree(state, ignore_errors=True)
    assert info is not None
    assert info.kind == "llama-server"
    assert info.context_tokens == server.context_per_slot
    for r in results:
        assert r.prompt_version == "c2-compact-json+grounded"
        assert r.llm_calls >= 1
        assert r.title
        assert r.summary
        assert r.prompt_tokens > 0  # spent even when the answer is then rejected
        assert r.prompt_tokens / r.llm_calls < 500  # the compact prompt
        assert not r.estimated  # llama-server reports usage
        assert "format" not in r.rejection_reasons  # the grammar makes a format failure impossible
        if r.fallback:  # a small model: not grounded
            assert r.fallback_reason.startswith("grounding check failed")
            assert r.model == "extractive"
        else:
            assert r.grounding_rejections <= 1
