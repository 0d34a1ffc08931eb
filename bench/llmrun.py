"""What the LLM scenarios share: storywire's Synthesize stream timed to its first and last story, the
peers timed the same way (each doing storywire's work: :mod:`bench.peers.common`), and the ideal wall
time by the simulator's own service model."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from storywire.v1 import common_pb2, synthesizer_pb2, synthesizer_pb2_grpc

from bench.peers.common import DEFAULTS, Clusters, PeerRun, default_plan
from bench.procs import settings_note, sim_reset, sim_stats
from bench.report import Row
from devtools.llmsim import answer_for, answer_format, profile_config, story_for
from devtools.simmodel import PROFILES, chain_makespan, makespan, solo_seconds
from services.synthesizer.stories import grounding
from services.synthesizer.stories.prompt import parse_answer

STREAM_BATCH = 50  # articles per Synthesize message
#: LLM calls the limiter's cold-start probe makes before it settles: one alone, then two together
PROBE_CALLS = 3


@dataclass
class StreamRun:
    """One Synthesize stream: when its first and last story came, and what it cost."""

    wall_s: float
    first_s: float
    stories: int
    fallbacks: int
    llm_calls: int
    rejections: int
    limit_after: int
    #: seconds the session spent clustering (its summary's ``cluster_time``)
    cluster_s: float = 0.0


async def stream(address: str, articles: Sequence[common_pb2.Article], model: str) -> StreamRun:
    """Articles in through the synthesizer's Synthesize stream; timed from the first message sent."""

    async def requests() -> AsyncIterator[synthesizer_pb2.SynthesizeRequest]:
        config = synthesizer_pb2.SynthesisConfig(job_id="bench", model=model)
        yield synthesizer_pb2.SynthesizeRequest(config=config)
        for i in range(0, len(articles), STREAM_BATCH):
            batch = common_pb2.ArticleBatch(articles=articles[i : i + STREAM_BATCH])
            yield synthesizer_pb2.SynthesizeRequest(batch=batch)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
        start = time.perf_counter()
        first, stories, fallbacks = 0.0, 0, 0
        totals, cluster_s = common_pb2.SynthesisTotals(), 0.0
        async for reply in stub.Synthesize(requests()):
            kind = reply.WhichOneof("item")
            if kind == "story":
                stories += 1
                fallbacks += reply.story.fallback
                first = first or time.perf_counter() - start
            elif kind == "summary":
                totals = reply.summary.totals
                cluster_s = reply.summary.cluster_time.ToNanoseconds() / 1e9
        wall = time.perf_counter() - start
        stats = await stub.GetCacheStats(synthesizer_pb2.GetCacheStatsRequest())
    return StreamRun(
        wall,
        first,
        stories,
        fallbacks,
        totals.llm_calls,
        totals.grounding_rejections,
        stats.concurrency_limit,
        cluster_s,
    )


def works(clusters: Clusters, profile: str, strict: bool = False, **changes: Any) -> list[float]:
    """Each cluster's solo service time on the simulator with this profile (its own token rule), for the
    request storywire sends (the default plan; ``strict``: the regeneration's stricter prompt) and the
    simulator's answer to it."""
    cfg = profile_config(profile, **changes)
    plan = default_plan()
    out = []
    for cluster in clusters:
        request = plan.request("m", cluster, DEFAULTS.llm_max_tokens, DEFAULTS.llm_temperature, strict)
        prompt = "\n".join(content for _, content in request.messages)
        if answer_format({"response_format": request.response_format}) == "text":
            answer = answer_for(prompt)
        else:
            answer = json.dumps(dict(zip(("title", "summary"), story_for(prompt), strict=True)))
        out.append(
            solo_seconds(
                max(1, len(prompt) // 4), max(1, len(answer) // 4), ttft=cfg.ttft,
                prompt_tps=cfg.prompt_tps, tokens_per_second=cfg.tokens_per_second, latency=cfg.latency,
            )
        )  # fmt: skip
    return out


def ideal(clusters: Clusters, profile: str, strict: bool = False, **changes: Any) -> tuple[float, float]:
    """(first story, last story) for a client that knows the backend and sends everything at once (or,
    under a window budget, as soon as the window has room): the model's lower bound for the LLM calls
    alone (no clustering; one round: see :func:`checked_ideal`)."""
    cfg = profile_config(profile, **changes)
    return makespan(
        sorted(works(clusters, profile, strict, **changes)), slots=cfg.slots,
        batch_slowdown=cfg.batch_slowdown, window_seconds=cfg.window_seconds,
        window_requests=cfg.window_requests,
    )  # fmt: skip


def checked_ideal(run: PeerRun, profile: str) -> float:
    """The ideal of a run whose answers were checked: each story's calls as the run made them (the first
    prompt, then the stricter one after a rejected answer), each costing what its answer's tokens cost,
    sent by a client that knows the backend: a story's first call at once, its regeneration as soon as
    the answer before it was read. The first-round ideal cannot stand for this: a rejected answer is not
    the grounded one it assumes (an invented fact makes it longer)."""
    cfg = profile_config(profile)

    def cost(prompt: int, completion: int) -> float:
        return solo_seconds(
            prompt, completion, ttft=cfg.ttft, prompt_tps=cfg.prompt_tps,
            tokens_per_second=cfg.tokens_per_second, latency=cfg.latency,
        )  # fmt: skip

    chains = [[cost(*tokens) for tokens in story.tokens] for story in run.stories]
    return chain_makespan(chains, slots=cfg.slots, batch_slowdown=cfg.batch_slowdown)


def passing(run: PeerRun) -> int:
    """How many of a run's shipped answers pass storywire's format and grounding checks (for a peer that
    checks nothing)."""
    ok = 0
    for story in run.stories:
        parsed = parse_answer(story.text)
        ok += parsed is not None and not grounding.check(parsed[0], parsed[1], story.sources)
    return ok


async def timed(
    url: str, profile: str, runs: int, call: Callable[[], Awaitable[Any]], **changes: Any
) -> tuple[list[float], list[Any], dict[str, Any]]:
    """``runs`` runs of ``call`` on a freshly reset simulator: their walls, results and the last run's
    simulator counters."""
    walls, results = [], []
    stats: dict[str, Any] = {}
    for _ in range(runs):
        sim_reset(url, profile=profile, **changes)
        start = time.perf_counter()
        results.append(await call())
        walls.append(time.perf_counter() - start)
        stats = sim_stats(url)
    return walls, results, stats


def sim_notes(stats: dict[str, Any]) -> str:
    notes = f"sim calls={stats['calls']} max in service={stats['max_in_service']}"
    if stats["rejected_429"]:
        notes += f" 429s={stats['rejected_429']}"
    return notes


def median_row(  # noqa: PLR0917 - a row's fields
    scenario: str, variant: str, walls: list[float], firsts: list[float], items: int, ideal_s: float,
    notes: str,
) -> Row:  # fmt: skip
    runs = f"; median of {len(walls)} runs" if len(walls) > 1 else ""
    return Row(
        scenario, variant, statistics.median(walls), items, "stories", ideal_s=ideal_s,
        first_s=statistics.median(firsts), notes=notes + runs,
        extra={"walls": walls, "firsts": firsts},
    )  # fmt: skip


def cold_start_row(
    scenario: str, group: str, cold: tuple[list[float], list[StreamRun], dict[str, Any]], ideal_s: float,
    settings: dict[str, str],
) -> Row:  # fmt: skip
    """The first stream of a fresh synthesizer (``timed``, one run), its limiter's cold-start probe
    included, as its own row. It is the warm-up of the timed runs after it, so it must make the probe's
    calls (else the first timed run measures the limiter mid-probe)."""
    walls, results, stats = cold
    run = results[0]
    if run.llm_calls < PROBE_CALLS:
        raise RuntimeError(f"the cold run made {run.llm_calls} LLM calls: the probe needs {PROBE_CALLS}")
    notes = (
        f"{settings_note(settings)}; {sim_notes(stats)}; limit after the run {run.limit_after}; "
        f"clustering {run.cluster_s * 1000:.0f} ms; llm calls={run.llm_calls}; a fresh synthesizer's "
        "first run, the limiter's cold-start probe included (one run, not in the median above)"
    )
    variant = f"{group}: storywire cold start (first run)"
    return median_row(scenario, variant, walls, [run.first_s], run.stories, ideal_s, notes)


def peer_first(result: Any) -> float:
    return result.first_s if isinstance(result, PeerRun) else 0.0


def capacity(profile: str) -> int:
    return PROFILES[profile].capacity


def peer_notes(runs: Sequence[PeerRun]) -> str:
    """What a peer's runs did of storywire's work: its clustering time (median), and the last run's calls,
    grounding rejections and fallbacks."""
    last = runs[-1]
    cluster_ms = statistics.median(r.cluster_s for r in runs) * 1000
    checked = last.stories and last.stories[0].work.checked
    notes = f"clustering {cluster_ms:.0f} ms; llm calls={last.calls}"
    if checked:
        notes += f" grounding rejections={last.rejections} fallbacks={last.fallbacks}"
    return notes
