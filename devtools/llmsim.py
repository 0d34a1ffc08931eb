"""An OpenAI-compatible LLM simulator for tests, the demo and benchmarks.

It behaves like a real server under load: ``slots`` requests are served at once, up to ``queue`` more
wait, and anything beyond gets 429 with a Retry-After estimate. Alone, an answer takes
``ttft + prompt_tokens / prompt_tps + completion_tokens / tokens_per_second`` seconds (a fixed
``latency`` when ``tokens_per_second`` is 0). With ``batch_slowdown`` the requests in service share the
server (each is ``1 + batch_slowdown x (n - 1)`` times slower with n in service), and a ``window_*``
budget answers 429 with Retry-After above so many requests or tokens per window
(:mod:`devtools.simmodel`). Named profiles set these the way real servers behave: ``queue`` (vLLM),
``cpu`` (Ollama / llama.cpp on a few cores), ``ratelimit`` (a hosted API) and ``sloppy`` (a weak model:
30% of answers fail the grounding check or the format); ``--profile NAME`` then any setting to override.

Answers are derived from the prompt (its first sentences), so they are deterministic and grounded,
except the share ``rate_sloppy`` that invents a fact or ignores the format. Faults are injected at
configurable rates: 429, 500, timeouts (the request hangs) and garbage bodies. ``dialect`` changes the
response shape the way real backends differ: ``openai``/``vllm`` (usage), ``ollama`` (error as a
string), ``llamacpp`` (timings, no usage when ``omit_usage``).

Structured output: a request with ``response_format`` (``json_schema`` or ``json_object``) is answered
with a ``{"title", "summary"}`` JSON object; so is one with a GBNF ``grammar`` in the ``llamacpp``
dialect (llama-server's field; other dialects refuse it with 400, as OpenAI refuses an unknown
parameter). ``structured=false`` refuses both with 400 (a backend without structured output). The
``llamacpp`` dialect also answers ``GET /props`` (``n_ctx``) and lists ``meta.n_params`` in
``/v1/models``, as llama-server does; ``stats.formats`` counts the requests by answer format. A sloppy
answer to a structured request is an ungrounded one: the backend enforces the format, not the facts.

``python -m devtools.llmsim --port 8089 --slots 4 --latency 1.0`` or ``--profile cpu``; GET /stats,
POST /reset (a JSON object of settings; with ``profile``, that profile's settings first).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aiohttp import web

from devtools.simmodel import PROFILES, RateWindow, SharedServer, solo_seconds


@dataclass
class SimConfig:
    slots: int = 16
    queue: int = 1024
    ttft: float = 0.05
    tokens_per_second: float = 0.0  # 0 = every call takes exactly `latency`
    latency: float = 0.2
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_garbage: float = 0.0
    hang_seconds: float = 30.0
    dialect: str = "openai"
    omit_usage: bool = False
    seed: int = 7
    #: answer text that invents a fact (to exercise the grounding check)
    invent: bool = False
    #: the named profile these settings started from ("" = none; see devtools.simmodel.PROFILES)
    profile: str = ""
    #: prompt tokens per second in prefill (0 = the prompt costs nothing)
    prompt_tps: float = 0.0
    #: each request in service is 1 + batch_slowdown x (n - 1) times slower with n in service
    batch_slowdown: float = 0.0
    #: a budget per window: at most window_requests requests and window_tokens tokens (0 = unlimited)
    window_seconds: float = 0.0
    window_requests: int = 0
    window_tokens: int = 0
    #: share of answers that fail the grounding check (an invented fact) or the format (no TITLE/SUMMARY)
    rate_sloppy: float = 0.0
    #: accept response_format (and, in the llamacpp dialect, grammar); false = 400 for either
    structured: bool = True
    #: llamacpp dialect: the slot context /props reports and the model size /v1/models reports
    n_ctx: int = 2048
    n_params: int = 134_515_008


def profile_config(profile: str = "", **changes: Any) -> SimConfig:
    """The settings of a named profile (or the plain defaults for ""), with ``changes`` on top."""
    if profile and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")
    base = PROFILES[profile].settings if profile else {}
    return SimConfig(**{**base, **changes, "profile": profile})


@dataclass
class SimStats:
    calls: int = 0
    completed: int = 0
    rejected_429: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    in_service: int = 0
    queued: int = 0
    max_in_service: int = 0
    max_queued: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: 429s for the window budget (also counted in rejected_429)
    rate_limited: int = 0
    #: answers made bad on purpose (rate_sloppy): {"ungrounded": n, "format": n}
    sloppy: dict[str, int] = field(default_factory=dict)
    #: requests by answer format asked for: text, json_schema, grammar
    formats: dict[str, int] = field(default_factory=dict)


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def answer_for(prompt: str, invent: bool = False, bad_format: bool = False) -> str:
    """A deterministic, grounded TITLE/SUMMARY answer built from the articles in the prompt (with
    ``invent``, plus a fact that is in no article; with ``bad_format``, chatty prose without the
    TITLE/SUMMARY lines)."""
    title, summary = story_for(prompt, invent)
    if bad_format:
        return f"Sure! Here is a story about {title.lower()}. {summary}"
    return f"TITLE: {title}\nSUMMARY: {summary}"


#: words the simulator leaves out, in the clipped style of a wire brief
_FILLER = frozenset(
    "a an the of from to in on at after for with by and but its their has had have been was were is are".split()  # noqa: SIM905, E501
)


def telegraphic(sentence: str) -> str:
    """The sentence without articles, prepositions and auxiliaries: its facts (names, numbers) stay,
    its wording is no longer a verbatim extract (which the grounding check rejects as extractive)."""
    words = [w for w in sentence.rstrip(".!?").split() if w.lower() not in _FILLER] or sentence.split()
    text = " ".join(words)
    return text[:1].upper() + text[1:] + "."


def story_for(prompt: str, invent: bool = False) -> tuple[str, str]:
    """(title, summary): the first article's title and up to three sentences that no single article has
    together (the lead first; a story combines its articles), in a telegraphic style (:func:`telegraphic`)."""
    articles = re.split(r"\n*Article \d+: ", prompt)[1:] or [prompt]
    title = articles[0].split("\n", 1)[0].strip() or "News update"
    bodies = [(a.split("\n", 1)[1] if "\n" in a else a).strip() for a in articles]
    picked: list[str] = []
    for body in bodies:
        for sentence in (s.strip() for s in _SENTENCE.split(body)):
            together = [*picked, sentence]
            if sentence and sentence not in picked and not any(all(p in b for p in together) for b in bodies):
                picked.append(sentence)
                break
        if len(picked) == 3:
            break
    if not picked and bodies and bodies[0]:
        picked = [_SENTENCE.split(bodies[0])[0].strip()]

    # a story combines its articles: with two or more, at least two leads, so no single article's
    # words make up most of it (the grounding check rejects an 80 % copy of one article as extractive)
    def grams(sentence: str) -> set[tuple[str, ...]]:
        words = telegraphic(sentence).lower().split()
        return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}

    for body in bodies[1:]:
        if len(picked) >= 2:
            break
        lead = _SENTENCE.split(body)[0].strip() if body else ""
        seen = set().union(*(grams(p) for p in picked)) if picked else set()
        if lead and lead not in picked and not grams(lead) & seen:  # no run of 5 words said twice
            picked.append(lead)
    summary = " ".join(telegraphic(s) for s in picked) or title
    if invent:
        summary += " Mayor Zorblax confirmed 9,999 people attended."
    return title, summary


def answer_format(body: dict[str, Any]) -> str:
    """The answer format a request asks for: json_schema (response_format), grammar, or text."""
    if isinstance(body.get("response_format"), dict) and body["response_format"].get("type") in (
        "json_schema",
        "json_object",
    ):
        return "json_schema"
    return "grammar" if isinstance(body.get("grammar"), str) else "text"


class Simulator:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._start()

    def _start(self) -> None:
        cfg = self.config
        self.stats = SimStats()
        self._rng = random.Random(cfg.seed)  # noqa: S311
        self._slots = asyncio.Semaphore(cfg.slots)
        self._finish_times: list[float] = []
        self._server = SharedServer(cfg.batch_slowdown) if cfg.batch_slowdown else None
        budget = cfg.window_seconds and (cfg.window_requests or cfg.window_tokens)
        self._window = (
            RateWindow(cfg.window_seconds, cfg.window_requests, cfg.window_tokens) if budget else None
        )

    def reset(self, **changes: Any) -> None:
        """New settings on top of the current ones (with ``profile``: on top of that profile's) and
        fresh counters."""
        known = {f.name for f in fields(SimConfig)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        if "profile" in changes:
            self.config = profile_config(**changes)
        else:
            self.config = SimConfig(**{**asdict(self.config), **changes})
        self._start()

    def _retry_after(self) -> int:
        now = time.monotonic()
        pending = sorted(t - now for t in self._finish_times if t > now)
        return max(1, math.ceil(pending[0])) if pending else 1

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        if self.config.dialect == "ollama":
            body: dict[str, Any] = {"error": message}
        else:
            body = {"error": {"message": message, "type": "server_error" if status >= 500 else "rate_limit"}}
        return web.json_response(body, status=status, headers=headers)

    def _pick_fault(self) -> str | None:
        cfg = self.config
        roll = self._rng.random()
        for name, rate in (("429", cfg.rate_429), ("500", cfg.rate_500), ("timeout", cfg.rate_timeout),
                           ("garbage", cfg.rate_garbage)):  # fmt: skip
            if roll < rate:
                self.stats.faults[name] = self.stats.faults.get(name, 0) + 1
                return name
            roll -= rate
        return None

    async def _early_fault(self, chosen: str | None) -> web.Response | None:
        """Faults answered before any slot is used (garbage is answered after the work, like a proxy)."""
        if chosen == "429":
            return self._error(429, "rate limited (injected)", {"Retry-After": "1"})
        if chosen == "500":
            return self._error(500, "internal error (injected)")
        if chosen == "timeout":
            await asyncio.sleep(self.config.hang_seconds)
            return self._error(504, "hung (injected)")
        return None

    def _answer(self, prompt: str, fmt: str) -> str:
        """The answer, made bad on purpose for a share ``rate_sloppy`` of calls (half of them ungrounded,
        half in the wrong format; a structured request cannot get the wrong format, so it gets an
        ungrounded answer instead)."""
        cfg = self.config
        kind = None
        if cfg.rate_sloppy and self._rng.random() < cfg.rate_sloppy:
            kind = "ungrounded" if self._rng.random() < 0.5 or fmt != "text" else "format"
            self.stats.sloppy[kind] = self.stats.sloppy.get(kind, 0) + 1
        invent = cfg.invent or kind == "ungrounded"
        if fmt == "text":
            return answer_for(prompt, invent, bad_format=kind == "format")
        title, summary = story_for(prompt, invent)
        return json.dumps({"title": title, "summary": summary})

    def _unsupported(self, fmt: str) -> web.Response | None:
        """400 for a structured-output request this backend does not take (as OpenAI refuses an unknown
        parameter): any without ``structured``, a grammar outside the llamacpp dialect."""
        cfg = self.config
        if fmt != "text" and (not cfg.structured or (fmt == "grammar" and cfg.dialect != "llamacpp")):
            return self._error(
                400, f"unsupported parameter: {'grammar' if fmt == 'grammar' else 'response_format'}"
            )
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        cfg, stats = self.config, self.stats
        stats.calls += 1
        try:
            body = await request.json()
            messages = body["messages"]
            prompt = "\n".join(str(m.get("content", "")) for m in messages)
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._error(400, "request body is not a chat completion request")
        fmt = answer_format(body)
        stats.formats[fmt] = stats.formats.get(fmt, 0) + 1
        early = self._unsupported(fmt)  # before any fault is drawn: a refused request is not served
        chosen = None if early is not None else self._pick_fault()
        if early is None:
            early = await self._early_fault(chosen)
        if early is not None:
            return early
        if stats.in_service >= cfg.slots and stats.queued >= cfg.queue:
            stats.rejected_429 += 1
            return self._error(
                429, "all slots busy and the queue is full", {"Retry-After": str(self._retry_after())}
            )
        prompt_tokens = max(1, len(prompt) // 4)
        if self._window is not None:
            requested = body.get("max_tokens")
            wait = self._window.admit(prompt_tokens + (requested if isinstance(requested, int) else 256))
            if wait is not None:
                stats.rejected_429 += 1
                stats.rate_limited += 1
                return self._error(429, "rate limit reached for requests", {"Retry-After": f"{wait:.3f}"})
        text = self._answer(prompt, fmt)
        completion_tokens = max(1, len(text) // 4)
        work = solo_seconds(
            prompt_tokens, completion_tokens, ttft=cfg.ttft, prompt_tps=cfg.prompt_tps,
            tokens_per_second=cfg.tokens_per_second, latency=cfg.latency,
        )  # fmt: skip
        stats.queued += 1
        stats.max_queued = max(stats.max_queued, stats.queued)
        async with self._slots:
            stats.queued -= 1
            stats.in_service += 1
            stats.max_in_service = max(stats.max_in_service, stats.in_service)
            try:
                self._finish_times.append(time.monotonic() + work)
                if self._server is not None:
                    await self._server.serve(work)
                else:
                    await asyncio.sleep(work)
            finally:
                stats.in_service -= 1
                now = time.monotonic()
                self._finish_times = [t for t in self._finish_times if t > now]
        stats.completed += 1
        stats.prompt_tokens += prompt_tokens
        stats.completion_tokens += completion_tokens
        if chosen == "garbage":
            return web.Response(text="<html>502 Bad Gateway</html>{not json", content_type="application/json")
        return web.json_response(self._payload(body, prompt, text, prompt_tokens, completion_tokens))

    def _payload(
        self, body: dict[str, Any], prompt: str, text: str, prompt_tokens: int, completion_tokens: int
    ) -> dict[str, Any]:
        """A chat completion body in the configured dialect."""
        payload: dict[str, Any] = {
            "id": "chatcmpl-" + hashlib.sha256(prompt.encode()).hexdigest()[:16],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "sim")),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
        }
        if not self.config.omit_usage:
            payload["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        if self.config.dialect == "llamacpp":
            payload["timings"] = {"predicted_n": completion_tokens, "prompt_n": prompt_tokens}
        return payload

    async def get_props(self, _: web.Request) -> web.Response:
        """llama-server's /props (what storywire reads of it); 404 in the other dialects."""
        if self.config.dialect != "llamacpp":
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(
            {"default_generation_settings": {"n_ctx": self.config.n_ctx}, "total_slots": self.config.slots}
        )

    async def get_models(self, _: web.Request) -> web.Response:
        model: dict[str, Any] = {"id": "sim", "object": "model", "owned_by": "storywire"}
        if self.config.dialect == "llamacpp":
            model["meta"] = {"n_params": self.config.n_params, "n_ctx_train": 8192}
        return web.json_response({"object": "list", "data": [model]})

    async def get_stats(self, _: web.Request) -> web.Response:
        return web.json_response({"config": asdict(self.config), "stats": asdict(self.stats)})

    async def post_reset(self, request: web.Request) -> web.Response:
        changes = await request.json() if request.can_read_body else {}
        try:
            self.reset(**changes)
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await self.get_stats(request)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/stats", self.get_stats)
        app.router.add_get("/props", self.get_props)
        app.router.add_get("/v1/models", self.get_models)
        app.router.add_post("/reset", self.post_reset)
        return app


async def start_simulator(
    config: SimConfig | None = None, port: int = 0
) -> tuple[Simulator, web.AppRunner, str]:
    """Start in this event loop on 127.0.0.1; returns the simulator, its runner and the base URL (…/v1)."""
    sim = Simulator(config)
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    return sim, runner, f"http://127.0.0.1:{bound}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.llmsim", description=__doc__)
    parser.add_argument("--port", type=int, default=8089)
    for f in fields(SimConfig):
        default = f.default
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(default) if not isinstance(default, bool) else json.loads,
            default=argparse.SUPPRESS,  # only what is given overrides the profile's settings
            help=f"default: {default!r}" + (f"; one of {', '.join(PROFILES)}" if f.name == "profile" else ""),
        )
    args = vars(parser.parse_args())
    port = args.pop("port")
    sim = Simulator(profile_config(**args))
    print(f"LLM simulator on http://127.0.0.1:{port}/v1 ({sim.config})", flush=True)
    web.run_app(sim.app(), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
