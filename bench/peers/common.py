"""What every peer shares: storywire's own work, done in-process with storywire's own functions, so that a
peer is neither handicapped nor handed free work.

Inside a peer's timed region, as inside storywire's Synthesize stream:

1. **Clustering**: the articles (the protos storywire's stream receives) become documents with the
   session's ``doc_of`` and are clustered by the default backend at its default threshold and minimum
   size, through the same ``StreamClusterer.finish`` that settles a stream's final clusters
   (:func:`cluster_articles`); its time is kept apart (``PeerRun.cluster_s``).
2. **The request**: the byte-identical body storywire's client sends for each cluster (the plan storywire
   chooses for this backend, the default ``max_tokens`` and temperature; :func:`body_bytes`).
3. **The answer**: read with storywire's ``parse_completion`` and ``parse_answer``, checked with its
   grounding check, and handled with its policy (:class:`Story`): a wrong format is asked again once, a
   rejected story is regenerated once with the stricter prompt, and what still fails gets the extractive
   fallback. A peer made with ``checked=False`` ships the first answer as it is (the naive client).

Every peer honours Retry-After on a 429, so that none fails on a rate-limited backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storywire.v1 import common_pb2

from services.synthesizer.clustering import StreamClusterer
from services.synthesizer.engine import DEFAULT_MIN_ARTICLES, cluster_backend
from services.synthesizer.llm.caller import RetryPolicy
from services.synthesizer.llm.client import (
    BackendInfo,
    ChatRequest,
    OpenAIClient,
    parse_completion,
    request_payload,
)
from services.synthesizer.llm.errors import BadResponseError
from services.synthesizer.session import doc_of
from services.synthesizer.settings import SynthesizerSettings
from services.synthesizer.stories import grounding
from services.synthesizer.stories.fallback import extractive_story
from services.synthesizer.stories.prompt import SourceArticle, parse_answer
from services.synthesizer.stories.structured import Plan, choose

#: the synthesizer's shipped settings (field defaults, no environment read)
DEFAULTS = SynthesizerSettings.model_construct()
#: attempts for an answer in the wrong format (the resilient caller's rule: a format failure is asked
#: again once, not ``max_attempts`` times)
FORMAT_ATTEMPTS = min(2, RetryPolicy(max_attempts=DEFAULTS.llm_max_attempts).max_attempts)
#: how long to wait after a 429 without a Retry-After header
DEFAULT_RETRY_AFTER = 1.0
JSON_HEADERS = {"Content-Type": "application/json"}
Clusters = list[list[SourceArticle]]


def default_plan(info: BackendInfo | None = None) -> Plan:
    """The prompt and answer format storywire's default settings choose for a backend that says
    ``info`` about itself (the simulator says nothing: the full prompt, a JSON schema answer)."""
    return choose(info or BackendInfo(), DEFAULTS.llm_prompt, DEFAULTS.llm_structured_output)


async def probe_plan(base_url: str) -> Plan:
    """Ask the backend what it is, as storywire's planner does once per process."""
    client = OpenAIClient(base_url)
    try:
        return default_plan(await client.probe())
    finally:
        await client.aclose()


def cluster_articles(articles: Sequence[common_pb2.Article]) -> Clusters:
    """storywire's final clusters of these articles, in the order its stream writes them (by key)."""
    backend = cluster_backend(DEFAULTS)
    clusterer = StreamClusterer(backend.default_threshold, DEFAULT_MIN_ARTICLES, backend)
    for article in articles:
        clusterer.add(doc_of(article))
    final = clusterer.finish().final
    return [[SourceArticle(d.id, d.title, d.text, d.content_hash) for d in c.docs] for c in final]


def body_bytes(request: ChatRequest) -> bytes:
    """The request's body as aiohttp's ``json=`` serialises it (``json.dumps``, UTF-8): byte for byte."""
    return json.dumps(request_payload(request)).encode()


@dataclass(frozen=True)
class Work:
    """What a peer is handed: the articles as storywire's stream receives them, the model name, the plan
    storywire uses on this backend, and whether the peer checks its answers as storywire does."""

    articles: Sequence[common_pb2.Article]
    model: str
    plan: Plan
    checked: bool = True


class Story:
    """One cluster's story under storywire's policy (``StoryWriter._generate``): ``body`` is the next
    request to send; ``take`` reads its answer; ``done`` when the story is settled."""

    def __init__(self, sources: Sequence[SourceArticle], work: Work) -> None:
        self.sources = list(sources)
        self.work = work
        self.rounds = [False, True] if work.checked else [False]  # the first prompt, then the stricter
        self.calls = self.rejections = 0
        #: (prompt, completion) tokens of each answer read, in order (what the ideal charges for them)
        self.tokens: list[tuple[int, int]] = []
        self.text = ""  # the last answer's text
        self.story: tuple[str, str] | None = None
        self.fallback = self.done = False
        self._next_round()

    def _next_round(self) -> None:
        if not self.rounds:
            self._give_up()
            return
        strict = self.rounds.pop(0)
        self.request = self.work.plan.request(
            self.work.model, self.sources, DEFAULTS.llm_max_tokens, DEFAULTS.llm_temperature, strict
        )
        self.body = body_bytes(self.request)
        self.attempt = 0

    def _give_up(self) -> None:
        self.story, self.fallback, self.done = extractive_story(self.sources), True, True

    def take(self, reply: Any) -> None:
        """A chat completion body (JSON) answering ``body``."""
        self.calls += 1
        self.attempt += 1
        try:
            completion = parse_completion(reply, self.request, 0.0)
        except BadResponseError:
            self.text = ""
        else:
            self.text = completion.text
            self.tokens.append((completion.prompt_tokens, completion.completion_tokens))
        if not self.work.checked:  # the naive client ships what it got
            self.done = True
            return
        parsed = parse_answer(self.text) if self.text else None
        if parsed is None:  # asked again the same way once, then the extractive fallback
            if self.attempt >= FORMAT_ATTEMPTS:
                self._give_up()
            return
        if not grounding.check(parsed[0], parsed[1], self.sources):
            self.story, self.done = parsed, True
            return
        self.rejections += 1
        self._next_round()


def retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header (seconds, possibly fractional)."""
    try:
        return max(0.0, float(value)) if value else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


@dataclass
class PeerRun:
    """One peer run: its clustering time, each story and the seconds after the start at which it was
    settled, and the 429s. Timed from before the clustering, as storywire's stream is."""

    started: float = field(default_factory=time.perf_counter)
    cluster_s: float = 0.0
    stories: list[Story] = field(default_factory=list)
    done_s: list[float] = field(default_factory=list)
    rejected_429: int = 0

    def cluster(self, work: Work) -> list[Story]:
        t0 = time.perf_counter()
        clusters = cluster_articles(work.articles)
        self.cluster_s = time.perf_counter() - t0
        return [Story(c, work) for c in clusters]

    def settled(self, story: Story) -> None:
        self.stories.append(story)
        self.done_s.append(time.perf_counter() - self.started)

    @property
    def first_s(self) -> float:
        return min(self.done_s) if self.done_s else 0.0

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.stories)

    @property
    def fallbacks(self) -> int:
        return sum(s.fallback for s in self.stories)

    @property
    def rejections(self) -> int:
        return sum(s.rejections for s in self.stories)
