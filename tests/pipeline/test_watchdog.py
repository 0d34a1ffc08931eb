"""The pipeline's stream watchdog at its default time (on a virtual clock), what it reports to its
attempt's activity, and a client stream whose peer stops taking messages (in real time, with a short
watchdog)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.synthesizer.pipeline.watchdog import (
    Activity,
    StreamStalledError,
    Watchdog,
    guarded,
    requests_watched,
)
from services.synthesizer.settings import SynthesizerSettings

DEFAULT = SynthesizerSettings.model_fields["worker_stream_watchdog_seconds"].default


class VirtualTime:
    """A clock that sleeping advances; ``every`` calls ``tick`` at each multiple of its period."""

    def __init__(self, limit: float, every: float = 0.0, tick: object = None) -> None:
        self.now, self.limit, self.every, self.tick = 0.0, limit, every, tick

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        step = min(seconds, self.every) if self.every else seconds
        self.now += max(step, 1e-3)
        if self.every and self.now % self.every < step and callable(self.tick):
            self.tick()
        if self.now > self.limit:
            raise TimeoutError("virtual time is up")
        await asyncio.sleep(0)


async def test_the_default_watchdog_fires_after_its_time_when_progress_is_owed() -> None:
    time = VirtualTime(limit=10 * DEFAULT)
    dog = Watchdog("fetcher.Fetch", DEFAULT, time.clock, time.sleep)
    dog.expect()
    with pytest.raises(
        StreamStalledError, match=r"fetcher\.Fetch: no progress for 20\.0 s \(watchdog 20 s\)"
    ):
        await dog.watch()
    assert DEFAULT <= time.now < DEFAULT + 1


async def test_it_stays_quiet_while_nothing_is_owed_or_progress_comes() -> None:
    idle = VirtualTime(limit=10 * DEFAULT)
    with pytest.raises(TimeoutError):  # the virtual time ran out first: no stall reported
        await Watchdog("store.PutStories", DEFAULT, idle.clock, idle.sleep).watch()
    busy = VirtualTime(limit=10 * DEFAULT, every=DEFAULT / 2)
    dog = Watchdog("store.PutStories", DEFAULT, busy.clock, busy.sleep)
    busy.tick = dog.progress
    dog.expect()
    with pytest.raises(TimeoutError):
        await dog.watch()


async def test_a_peer_that_stops_taking_messages_fails_the_call_and_cancels_it() -> None:
    taken: list[int] = []
    cancelled = asyncio.Event()

    async def items() -> AsyncIterator[int]:
        for i in range(10):
            yield i

    async def call(requests: AsyncIterator[int]) -> str:
        try:
            async for item in requests:
                taken.append(item)
                if item == 2:
                    await asyncio.Event().wait()  # the peer stops reading
            return "done"
        except asyncio.CancelledError:
            cancelled.set()
            raise

    dog = Watchdog("store.PutStories", 0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StreamStalledError, match=r"store\.PutStories: no progress"):
        await guarded(dog, call(requests_watched(items(), dog)))
    assert taken == [0, 1, 2]
    assert cancelled.is_set()
    assert loop.time() - started < 5
    # the same stream read to the end returns its response
    dog = Watchdog("store.PutStories", 0.3)
    assert await guarded(dog, quick(requests_watched(items(), dog))) == "10 items"


async def quick(requests: AsyncIterator[int]) -> str:
    return f"{len([r async for r in requests])} items"


async def test_every_message_taken_is_reported_to_the_attempts_activity() -> None:
    """Progress (a message the transport took) moves the attempt's activity; a message merely owed, or
    the response awaited after the last one, does not."""
    time = VirtualTime(limit=10 * DEFAULT)
    activity = Activity(time.clock)
    dog = Watchdog("store.PutStories", DEFAULT, time.clock, time.sleep, activity=activity)
    moves: list[float] = []
    requests = requests_watched(items_at(time, [5.0, 5.0, 5.0]), dog)
    async for _ in requests:
        time.now += 1.0  # the transport asks for the next message a second later: this one is taken
        moves.append(activity.last)
    time.now += 30.0  # half-closed: waiting for the response is owed, not progress
    assert dog.owed
    assert moves == [0.0, 6.0, 12.0]
    assert activity.last == 18.0
    assert activity.idle() == 30.0


async def items_at(time: VirtualTime, gaps: list[float]) -> AsyncIterator[int]:
    """One item after each gap of virtual time."""
    for i, gap in enumerate(gaps):
        time.now += gap
        yield i
