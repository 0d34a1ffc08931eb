"""Prompt choice and structured output against the simulator speaking each backend's dialect."""

from __future__ import annotations

import pytest

from services.synthesizer.session import Totals
from services.synthesizer.stories.prompt import PROMPT_VERSION, PromptSpec, build_messages, parse_answer
from services.synthesizer.stories.structured import GRAMMAR
from services.synthesizer.stories.writer import GenParams
from tests.synthesizer.conftest import Sim, engine_for
from tests.synthesizer.test_writer import cluster

PARAMS = GenParams("sim-1", 300, 0.2)


@pytest.mark.parametrize("dialect", ["openai", "vllm", "ollama"])
async def test_json_schema_where_the_backend_cannot_say_what_it_is(sim: Sim, dialect: str) -> None:
    sim.sim.reset(latency=0.01, dialect=dialect)
    async with engine_for(sim.url) as engine:
        result = await engine.writer.write(cluster(1), PARAMS)
    assert not result.fallback, result.fallback_reason
    assert sim.sim.stats.formats == {"json_schema": 1}
    # no /props: the full prompt, as before, now with a JSON answer enforced by the schema
    assert result.prompt_version == "v1-full-json+json_schema"
    assert result.rejection_reasons == []


async def test_a_small_model_on_llama_server_gets_the_compact_prompt_and_the_grammar(sim: Sim) -> None:
    sim.sim.reset(latency=0.01, dialect="llamacpp", n_ctx=2048, n_params=134_515_008)
    articles = cluster(2, size=6)
    async with engine_for(sim.url) as engine:
        result = await engine.writer.write(articles, PARAMS)
    assert not result.fallback, result.fallback_reason
    assert sim.sim.stats.formats == {"grammar": 1}
    assert result.prompt_version == "c2-compact-json+grounded"
    full = build_messages(articles, spec=PromptSpec("full", "json"))
    assert result.prompt_tokens < sum(len(text) for _, text in full) // 4


async def test_a_large_model_on_llama_server_still_gets_the_full_prompt(sim: Sim) -> None:
    sim.sim.reset(latency=0.01, dialect="llamacpp", n_ctx=32768, n_params=8_030_261_248)
    async with engine_for(sim.url) as engine:
        result = await engine.writer.write(cluster(3, size=6), PARAMS)
    assert not result.fallback, result.fallback_reason
    assert result.prompt_version == "v1-full-json+grammar"
    assert engine.writer.planner.info is not None
    assert engine.writer.planner.info.context_tokens == 32768


async def test_a_backend_without_structured_output_gets_the_text_format(sim: Sim) -> None:
    sim.sim.reset(latency=0.01, structured=False)
    async with engine_for(sim.url) as engine:
        first = await engine.writer.write(cluster(4), PARAMS)
        second = await engine.writer.write(cluster(5), PARAMS)
    assert not first.fallback, first.fallback_reason
    assert not second.fallback, second.fallback_reason
    # refused once with 400, then asked in text for this and every later story
    assert sim.sim.stats.formats == {"json_schema": 1, "text": 2}
    assert first.prompt_version == second.prompt_version == PROMPT_VERSION


async def test_settings_force_the_prompt_and_the_format(sim: Sim) -> None:
    sim.sim.reset(latency=0.01)
    async with engine_for(sim.url, llm_prompt="compact", llm_structured_output="off") as engine:
        result = await engine.writer.write(cluster(6), PARAMS)
    assert not result.fallback, result.fallback_reason
    assert sim.sim.stats.formats == {"text": 1}
    assert result.prompt_version == "c2-compact-text"


async def test_every_rejection_reason_is_counted_in_the_totals(sim: Sim) -> None:
    sim.sim.reset(latency=0.01, invent=True)
    async with engine_for(sim.url) as engine:
        result = await engine.writer.write(cluster(7), PARAMS)
    assert result.fallback
    assert sorted(result.rejection_reasons) == ["invented_name", "invented_name", "invented_number",
                                                "invented_number"]  # fmt: skip
    totals = Totals()
    totals.add(result)
    totals.add(result)
    assert dict(totals.proto.rejection_reasons) == {"invented_name": 4, "invented_number": 4}


async def test_an_answer_in_neither_format_is_a_format_rejection(sim: Sim) -> None:
    sim.sim.reset(latency=0.01, rate_garbage=1.0)
    async with engine_for(sim.url, llm_max_attempts=2) as engine:
        result = await engine.writer.write(cluster(8), PARAMS)
    assert result.fallback
    assert result.rejection_reasons == ["format"]


def test_answers_parse_in_both_formats() -> None:
    assert parse_answer('{"title": "A  title", "summary": "One. Two."}') == ("A title", "One. Two.")
    assert parse_answer("TITLE: A title\nSUMMARY: One. Two.") == ("A title", "One. Two.")
    assert parse_answer('{"title": "only a title"}') is None
    assert parse_answer("no format at all") is None


def test_the_grammar_bounds_the_answer() -> None:
    # every repetition is bounded, so the longest answer fits the compact token limit
    assert "+" not in GRAMMAR
    assert "*" not in GRAMMAR
    assert 'root ::= "{\\"title\\": \\"" title' in GRAMMAR
