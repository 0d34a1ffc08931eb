"""Which prompt and which answer format a backend gets, and how the format is enforced.

Prompt (``STORYWIRE_LLM_PROMPT``): ``full`` or ``compact`` as asked; ``auto`` asks the backend
(:meth:`OpenAIClient.probe`): a llama-server whose model has under 1B parameters or whose slot context is
under 4,096 tokens gets the compact prompt; everything else, and any backend that cannot tell, the full
one. The compact prompt is decoded greedily (temperature 0) with at most ``COMPACT_MAX_TOKENS``.

Answer format (``STORYWIRE_LLM_STRUCTURED_OUTPUT``): ``grammar`` sends a GBNF grammar (llama-server's
``grammar`` field) that only admits ``{"title": "...", "summary": "..."}`` with two or three complete
sentences, bounded so that it fits the token limit: a format failure cannot happen. ``json_schema`` sends
``response_format`` with a JSON schema (OpenAI, vLLM, Ollama and llama-server accept it). ``auto`` picks
the grounded grammar for a small model on llama-server, the plain grammar for a large one, and the
schema elsewhere. ``grounded`` (llama-server) is the grammar with
names and numbers restricted to the cluster's own (:mod:`services.synthesizer.stories.grounded`). A
backend that rejects any of them (HTTP 4xx) is asked again in the text format, and is sent the text
format from then on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from runtime.logging import get_logger
from services.synthesizer.llm.client import BackendInfo, ChatRequest, OpenAIClient
from services.synthesizer.stories.grounded import grounded_grammar
from services.synthesizer.stories.prompt import AnswerFormat, PromptSpec, SourceArticle, build_messages

log = get_logger(__name__)

PromptMode = Literal["auto", "compact", "full"]
StructuredMode = Literal["auto", "json_schema", "grammar", "grounded", "off"]
Enforcement = Literal["json_schema", "grammar", "grounded", "off"]

SMALL_MODEL_PARAMETERS = 1_000_000_000
SMALL_CONTEXT_TOKENS = 4096
#: the grammar's longest answer (about 520 characters) fits at 2 characters per token; with 200 tokens
#: and 150-character sentences, 2 of 26 answers on the sample were cut off in a loop (format failures)
COMPACT_MAX_TOKENS = 280
#: llama-server's repetition penalty for the compact prompt: without it SmolLM2 loops (13 of 29 answers
#: on dev-news repeated 5-word runs); with it and the grounded grammar, 9 of 14 first answers passed
COMPACT_REPEAT_PENALTY = 1.3
TITLE_CHARS = (8, 90)
SENTENCE_CHARS = (15, 130)
SENTENCES = (2, 3)

STORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "summary": {"type": "string"}},
    "required": ["title", "summary"],
    "additionalProperties": False,
}
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "story", "strict": True, "schema": STORY_SCHEMA},
}


def story_grammar() -> str:
    """GBNF for ``{"title": "...", "summary": "..."}``: a one-line title, then 2-3 sentences that each
    start with a capital or a digit and end with . ! or ? (a period only inside a number), no quotes or
    backslashes to escape. At most about 520 characters, so the answer ends within ``COMPACT_MAX_TOKENS``
    (unless the tokenizer needs more than one token per 2 characters)."""
    t_min, t_max = TITLE_CHARS
    s_min, s_max = SENTENCE_CHARS
    extra = SENTENCES[1] - 1
    return "\n".join(
        [
            'root ::= "{\\"title\\": \\"" title "\\", \\"summary\\": \\"" summary "\\"}"',
            f"title ::= [A-Z0-9] tchar{{{t_min - 1},{t_max - 1}}}",
            'tchar ::= [^"\\\\\\n\\r\\t]',
            f'summary ::= sentence (" " sentence){{{SENTENCES[0] - 1},{extra}}}',
            f"sentence ::= [A-Z0-9] schar{{{s_min - 2},{s_max - 2}}} [.!?]",
            'schar ::= [^"\\\\\\n\\r\\t.!?] | "." [0-9]',
        ]
    )


GRAMMAR = story_grammar()


@dataclass(frozen=True)
class Plan:
    """The prompt, the answer format and its enforcement for one request."""

    spec: PromptSpec
    enforcement: Enforcement

    @property
    def version(self) -> str:
        """Part of the cache key: prompt style and version, answer format and how it was enforced."""
        return self.spec.version if self.enforcement == "off" else f"{self.spec.version}+{self.enforcement}"

    def request(
        self, model: str, articles: list[SourceArticle], max_tokens: int, temperature: float, strict: bool
    ) -> ChatRequest:
        repeat_penalty = None
        if self.spec.style == "compact":
            max_tokens, temperature = min(max_tokens, COMPACT_MAX_TOKENS), 0.0
            if self.enforcement in ("grammar", "grounded"):  # llama-server
                repeat_penalty = COMPACT_REPEAT_PENALTY
        return ChatRequest(
            model,
            build_messages(articles, strict, self.spec),
            max_tokens,
            temperature,
            response_format=RESPONSE_FORMAT if self.enforcement == "json_schema" else None,
            grammar=GRAMMAR
            if self.enforcement == "grammar"
            else grounded_grammar(articles)
            if self.enforcement == "grounded"
            else None,
            repeat_penalty=repeat_penalty,
        )


def choose(info: BackendInfo, prompt: PromptMode, structured: StructuredMode) -> Plan:
    style = prompt
    if style == "auto":
        small = info.kind == "llama-server" and (
            (info.parameters is not None and info.parameters < SMALL_MODEL_PARAMETERS)
            or (info.context_tokens is not None and info.context_tokens < SMALL_CONTEXT_TOKENS)
        )
        style = "compact" if small else "full"
    enforcement: Enforcement
    if structured == "auto":
        if info.kind != "llama-server":
            enforcement = "json_schema"
        else:  # a small model invents names and numbers: only the articles' own are admitted
            enforcement = "grounded" if style == "compact" else "grammar"
    else:
        enforcement = structured
    answer: AnswerFormat = "text" if enforcement == "off" else "json"
    return Plan(PromptSpec(style, answer), enforcement)


class Planner:
    """Probes the backend once (on first use), then hands out the plan; remembers a backend that
    rejected structured output."""

    def __init__(
        self, client: OpenAIClient | None, prompt: PromptMode = "auto", structured: StructuredMode = "auto"
    ) -> None:
        self.client = client
        self.prompt = prompt
        self.structured = structured
        self.info: BackendInfo | None = None
        self._unsupported = False
        self._lock = asyncio.Lock()

    async def plan(self) -> Plan:
        if self.info is None:
            async with self._lock:
                if self.info is None:
                    needs_probe = self.client is not None and "auto" in (self.prompt, self.structured)
                    self.info = await self.client.probe() if needs_probe and self.client else BackendInfo()
                    chosen = choose(self.info, self.prompt, self.structured)
                    log.info("LLM backend probed", kind=self.info.kind, context=self.info.context_tokens,
                             parameters=self.info.parameters, plan=chosen.version)  # fmt: skip
        return choose(self.info, self.prompt, "off" if self._unsupported else self.structured)

    def structured_unsupported(self, plan: Plan, error: Exception) -> None:
        if not self._unsupported:
            log.warning("the backend rejected structured output; using the text format",
                        enforcement=plan.enforcement, error=str(error)[:200])  # fmt: skip
        self._unsupported = True
