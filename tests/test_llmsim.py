"""The LLM simulator's profiles have the shape of the servers they model (on loopback, real HTTP).

Time assertions lean on lower bounds (a busy machine only makes a request slower, never faster than its
service model allows) and keep upper bounds generous."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bench.llmrun import works
from bench.peers.common import cluster_articles
from bench.scenarios.seed import corpus_articles
from bench.shape import shape
from devtools.llmsim import SimConfig, Simulator, answer_for, profile_config, start_simulator
from devtools.simmodel import PROFILES, SharedServer, chain_makespan, makespan, slowdown, solo_seconds
from services.synthesizer.stories import grounding
from services.synthesizer.stories.prompt import SourceArticle, build_messages, parse_answer

#: three outlets on one event, in their own words (a clean answer from them passes the grounding check)
_LEADS = [
    ("Harbour plan approved", "The city council approved the harbour plan on Monday after a long debate."),
    (
        "Council backs harbour works",
        "Councillors voted for the new harbour works in Marlow on Monday evening.",
    ),
    ("Marlow harbour to be rebuilt", "Marlow will rebuild its harbour, a project costing 12 million crowns."),
]
_REST = (
    "The project will cost 12 million crowns and should be finished in two years. "
    "Fishing boats will use a temporary quay while the old piers are replaced. "
)
ARTICLES = [
    SourceArticle(
        str(i), title, f"{lead} {_REST}" + f"Residents of district {i + 1} asked about noise. " * 12, str(i)
    )
    for i, (title, lead) in enumerate(_LEADS)
]


def body(articles: list[SourceArticle] = ARTICLES, max_tokens: int = 200) -> dict[str, Any]:
    messages = [{"role": r, "content": c} for r, c in build_messages(articles)]
    return {"model": "sim", "messages": messages, "max_tokens": max_tokens}


class Client:
    def __init__(self, sim: Simulator, url: str, session: aiohttp.ClientSession) -> None:
        self.sim, self.url, self.session = sim, url, session

    async def call(self, payload: dict[str, Any] | None = None) -> tuple[int, float, dict[str, Any], str]:
        """(status, seconds, JSON body, Retry-After header)."""
        start = time.monotonic()
        async with self.session.post(self.url + "/chat/completions", json=payload or body()) as r:
            data = await r.json()
            return r.status, time.monotonic() - start, data, r.headers.get("Retry-After", "")

    def work(self, payload: dict[str, Any] | None = None) -> float:
        """The request's solo service time by the simulator's own model."""
        cfg = self.sim.config
        prompt = "\n".join(m["content"] for m in (payload or body())["messages"])
        return solo_seconds(
            max(1, len(prompt) // 4), self.completion_tokens(payload), ttft=cfg.ttft,
            prompt_tps=cfg.prompt_tps, tokens_per_second=cfg.tokens_per_second, latency=cfg.latency,
        )  # fmt: skip

    @staticmethod
    def completion_tokens(payload: dict[str, Any] | None = None) -> int:
        prompt = "\n".join(m["content"] for m in (payload or body())["messages"])
        return max(1, len(answer_for(prompt)) // 4)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    sim, runner, url = await start_simulator(SimConfig())
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(sim, url, session)
    finally:
        await runner.cleanup()


async def test_cpu_profile_time_grows_in_proportion_to_requests_in_service(client: Client) -> None:
    client.sim.reset(profile="cpu")
    work = client.work()
    assert 0.1 < work < 1.0
    status, alone, _, _ = await client.call()
    assert status == 200
    assert alone >= 0.95 * work
    start = time.monotonic()
    together = await asyncio.gather(*(client.call() for _ in range(4)))
    wall = time.monotonic() - start
    assert all(s == 200 for s, *_ in together)
    # 4 slots share one CPU: throughput is no better than one at a time (the work is conserved), and
    # each request takes about 4x as long (less only by how far apart the 4 arrived)
    assert wall >= 0.95 * 4 * work
    assert sum(seconds for _, seconds, *_ in together) / 4 >= 3 * work
    assert max(seconds for _, seconds, *_ in together) < 4 * work + 3.0
    # a fifth waits for a slot (llama-server queues) instead of joining or being refused
    client.sim.reset(profile="cpu")
    start = time.monotonic()
    five = await asyncio.gather(*(client.call() for _ in range(5)))
    assert time.monotonic() - start >= 0.95 * 5 * work
    assert all(s == 200 for s, *_ in five)
    assert client.sim.stats.max_in_service == 4
    assert client.sim.stats.max_queued >= 1


async def test_queue_profile_batches_with_a_mild_slowdown_and_never_refuses(client: Client) -> None:
    client.sim.reset(profile="queue")
    work = client.work()
    cfg = client.sim.config
    results = await asyncio.gather(*(client.call() for _ in range(40)))
    assert all(s == 200 for s, *_ in results)  # queued, never 429
    assert client.sim.stats.rejected_429 == 0
    assert client.sim.stats.max_in_service == cfg.slots == 16
    batch = slowdown(16, cfg.batch_slowdown)
    assert 1.2 < batch < 2.0
    # the first batch of 16 shares the GPU, the others waited for it first (the earliest arrivals ran
    # a little faster until the batch filled up: the median is above the bound with room)
    assert statistics.median(seconds for _, seconds, *_ in results) >= 0.95 * batch * work
    # 40 requests: three batches, far faster than 40 one after another
    assert max(seconds for _, seconds, *_ in results) < 40 * work


async def test_ratelimit_profile_answers_429_with_retry_after_above_the_window_budget(client: Client) -> None:
    client.sim.reset(profile="ratelimit")
    cfg = client.sim.config
    first = await asyncio.gather(*(client.call() for _ in range(10)))
    ok = [r for r in first if r[0] == 200]
    limited = [r for r in first if r[0] == 429]
    assert len(ok) == cfg.window_requests == 6
    assert len(limited) == 4
    waits = [float(r[3]) for r in limited]
    assert all(0 < w <= cfg.window_seconds for w in waits)
    assert client.sim.stats.rate_limited == 4
    await asyncio.sleep(max(waits) + 0.05)  # honouring Retry-After gets through
    again = await asyncio.gather(*(client.call() for _ in range(4)))
    assert all(r[0] == 200 for r in again)


async def test_ratelimit_counts_tokens_too(client: Client) -> None:
    client.sim.reset(profile="ratelimit", window_requests=100, window_tokens=3000)
    statuses = [(await client.call(body(max_tokens=1000)))[0] for _ in range(3)]
    assert statuses[0] == 200
    assert 429 in statuses  # about 1,000 prompt tokens + 1,000 requested: the budget holds 1 or 2


async def test_latency_scales_with_prompt_and_completion_tokens(client: Client) -> None:
    client.sim.reset(profile="queue", prompt_tps=2000.0)
    short, long = body(ARTICLES[:1]), body(ARTICLES)
    assert client.work(long) > client.work(short) + 0.2
    _, short_s, short_body, _ = await client.call(short)
    _, long_s, long_body, _ = await client.call(long)
    assert long_body["usage"]["prompt_tokens"] > 2 * short_body["usage"]["prompt_tokens"]
    assert long_s >= 0.95 * client.work(long)
    assert long_s > short_s


async def test_sloppy_profile_spoils_the_set_share_of_answers(client: Client) -> None:
    client.sim.reset(profile="sloppy", ttft=0.0, prompt_tps=0.0, tokens_per_second=1e6, seed=3)
    n = 300
    texts = [
        r[2]["choices"][0]["message"]["content"]
        for r in await asyncio.gather(*(client.call() for _ in range(n)))
    ]
    bad_format = [t for t in texts if parse_answer(t) is None]
    parsed = [p for t in texts if (p := parse_answer(t)) is not None]
    ungrounded = [p for p in parsed if grounding.check(p[0], p[1], ARTICLES)]
    share = (len(bad_format) + len(ungrounded)) / n
    assert 0.2 < share < 0.4  # 30 % by the profile
    assert bad_format
    assert ungrounded
    assert client.sim.stats.sloppy == {"format": len(bad_format), "ungrounded": len(ungrounded)}


def test_profiles_are_named_settings_with_overrides() -> None:
    for name, profile in PROFILES.items():
        config = profile_config(name)
        assert config.profile == name
        assert profile.models
        assert profile.capacity >= 1
        assert config.tokens_per_second > 0  # latency scales with tokens in every profile
    assert profile_config("cpu", slots=2).slots == 2
    assert profile_config("cpu", slots=2).batch_slowdown == PROFILES["cpu"].settings["batch_slowdown"]
    assert profile_config() == SimConfig()  # no profile: the original defaults
    with pytest.raises(ValueError, match="unknown profile"):
        profile_config("gpu")


async def test_shared_server_matches_its_virtual_clock_model() -> None:
    server = SharedServer(batch_slowdown=1.0)
    works = [0.1, 0.2, 0.3]
    start = time.monotonic()
    done: list[float] = []

    async def one(w: float) -> None:
        await server.serve(w)
        done.append(time.monotonic() - start)

    await asyncio.gather(*(one(w) for w in works))
    first, last = makespan(works, slots=3, batch_slowdown=1.0)
    # processor sharing with f(n) = n: 0.1 done at 0.3, 0.2 at 0.5, 0.3 at 0.6
    assert first == pytest.approx(0.3)
    assert last == pytest.approx(0.6)
    assert done[0] >= 0.95 * first
    assert done[-1] >= 0.95 * last
    assert done[-1] < last + 1.0
    assert server.in_service == 0


async def test_chains_on_the_shared_server_match_their_virtual_clock_model() -> None:
    """A regeneration goes out once the answer before it is read: chains of requests, each link sent when
    the one before it ends (what the sloppy profile's ideal charges for a rejected answer)."""
    server = SharedServer(batch_slowdown=1.0)
    chains = [[0.1], [0.2, 0.1]]
    start = time.monotonic()

    async def one(chain: list[float]) -> None:
        for work in chain:
            await server.serve(work)

    await asyncio.gather(*(one(c) for c in chains))
    wall = time.monotonic() - start
    # f(n) = n: 0.1 and 0.2 share until 0.2 (0.1 done); then 0.1 left of the first link and the
    # second link's 0.1 share until 0.4
    assert chain_makespan(chains, slots=3, batch_slowdown=1.0) == pytest.approx(0.4)
    assert 0.95 * 0.4 <= wall < 0.4 + 1.0


def test_chain_makespan_waits_for_a_slot_and_for_the_link_before() -> None:
    assert chain_makespan([[0.5], [0.5]], slots=16) == pytest.approx(0.5)
    assert chain_makespan([[0.5], [0.5]], slots=1) == pytest.approx(1.0)
    assert chain_makespan([[0.5, 0.5], [0.2]], slots=16) == pytest.approx(1.0)
    # one slot: the second chain's request waits for the first link, then the regeneration waits for it
    assert chain_makespan([[0.5, 0.5], [0.2]], slots=1) == pytest.approx(1.2)
    assert chain_makespan([], slots=4) == 0.0


def test_makespan_of_a_rate_window() -> None:
    # 14 requests, 6 per 1 s window, 0.5 s each: three windows, the last batch done at 2.5 s
    first, last = makespan([0.5] * 14, slots=1000, window_seconds=1.0, window_requests=6)
    assert first == pytest.approx(0.5)
    assert last == pytest.approx(2.5)
    assert makespan([0.5] * 4, slots=16, concurrency=1) == pytest.approx((0.5, 2.0))


async def test_bench_shape_measures_the_cpu_profile_as_time_proportional_to_requests() -> None:
    _, runner, url = await start_simulator(profile_config("cpu"))
    try:
        (n1, alone), (n2, two), (n4, four) = await shape(url, "sim", [1, 2, 4], 64)
    finally:
        await runner.cleanup()
    (work,) = works(cluster_articles(corpus_articles())[:1], "cpu")  # the request shape() sends
    assert (n1, n2, n4) == (1, 2, 4)
    assert alone >= 0.95 * work
    assert two >= 0.95 * 2 * work - 0.05  # less only by how far apart the requests arrived
    assert four >= 0.95 * 4 * work - 0.05
