"""At a limit of 1 the backend idles between one answer and the next call: the call that the answer's
permit lets in must reach the backend before the answer is parsed and checked, not after. The simulator
runs in a thread with its own event loop, so that when a request arrives does not depend on the
caller's loop being free."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from devtools.llmsim import Simulator
from services.synthesizer.llm.caller import ResilientCaller, Spent
from services.synthesizer.llm.client import ChatRequest, OpenAIClient
from services.synthesizer.llm.limiter import AdaptiveLimiter
from services.synthesizer.stories.prompt import parse_answer

#: how long each answer's parse holds the caller's event loop (a slow grounding check)
PARSE_SECONDS = 0.2


class ThreadedSim:
    """The simulator on its own loop in a thread; ``arrivals`` are when chat requests came in."""

    def __init__(self) -> None:
        self.sim = Simulator()
        self.arrivals: list[float] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> web.AppRunner:
        @web.middleware
        async def record(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if request.path.endswith("/chat/completions"):
                self.arrivals.append(time.monotonic())
            return await handler(request)

        app = self.sim.app()
        app.middlewares.append(record)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        return runner

    def __enter__(self) -> ThreadedSim:
        self._thread.start()
        assert self._ready.wait(30), "the simulator did not start"
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


@pytest.fixture
def threaded_sim() -> Iterator[ThreadedSim]:
    with ThreadedSim() as sim:
        yield sim


def request(n: int) -> ChatRequest:
    text = f"Article 1: Bridge {n} reopens\nThe bridge {n} reopened on Tuesday. Traffic resumed at 6am."
    return ChatRequest(f"sim-{n}", (("user", text),), 64, 0.0)


async def test_the_next_call_reaches_the_backend_before_the_answer_is_parsed(
    threaded_sim: ThreadedSim,
) -> None:
    threaded_sim.sim.reset(latency=0.02)
    parses: list[tuple[float, float]] = []

    def slow_parse(text: str) -> tuple[str, str] | None:
        start = time.monotonic()
        time.sleep(PARSE_SECONDS)  # holds the event loop, as CPU-bound checking would
        parses.append((start, time.monotonic()))
        return parse_answer(text)

    client = OpenAIClient(threaded_sim.url, total_timeout=60)
    caller = ResilientCaller(client, AdaptiveLimiter(1, 1, 1, static=True))
    try:
        await asyncio.wait_for(
            asyncio.gather(*(caller.call(request(n), slow_parse, Spent()) for n in range(5))), 60
        )
    finally:
        await client.aclose()
    arrivals = sorted(threaded_sim.arrivals)
    assert len(arrivals) == 5
    assert len(parses) == 5
    # each answer's parse ends after the next request arrived (it was sent before the parse began)
    late = [i for i, (_, end) in enumerate(sorted(parses)[:-1]) if arrivals[i + 1] >= end]
    assert not late, f"requests sent only after the previous answer's parse: {late}"
