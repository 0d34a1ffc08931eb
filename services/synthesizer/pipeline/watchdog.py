"""Progress watchdogs for the pipeline's streams: a stream that is owed progress (a message to receive,
a message the transport has not taken, a response after the last request) and makes none for
``seconds`` fails the attempt with a reason that names the service and the stream. The watchdogs of an
attempt's pipeline streams also report their progress to its ``Activity``, which the net under them
(``supervise.py``) counts its idle time from."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from runtime.logging import get_logger

T = TypeVar("T")
log = get_logger(__name__)

#: how long cancelled tasks get to end before they are abandoned
CANCEL_GRACE = 5.0
#: a guarded stream's own task gets less, so that it is reported (and ends) before the pipeline's grace
GUARD_GRACE = 2.0


class StreamStalledError(Exception):
    """A pipeline stream made no progress for its watchdog time."""


class Activity:
    """When a job attempt last moved: one of its streams made progress, or one of its tasks ended."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or asyncio.get_running_loop().time
        self.last = self._clock()

    def touch(self) -> None:
        self.last = self._clock()

    def idle(self) -> float:
        """Seconds since the attempt last moved."""
        return self._clock() - self.last


class Watchdog:
    """Fails (``watch`` raises) when the stream is owed progress and none came for ``seconds``; reports
    every progress to ``activity`` when given."""

    def __init__(
        self,
        name: str,
        seconds: float,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        activity: Activity | None = None,
    ) -> None:
        self.name = name
        self.seconds = seconds
        self._clock = clock or asyncio.get_running_loop().time
        self._sleep = sleep
        self._activity = activity
        self.last = self._clock()
        self.owed = False

    def progress(self) -> None:
        self.last = self._clock()
        if self._activity is not None:
            self._activity.touch()

    def expect(self, owed: bool = True) -> None:
        """Progress is (no longer) owed: a message is pending, or the response is awaited."""
        if owed and not self.owed:
            self.last = self._clock()
        self.owed = owed

    async def watch(self) -> None:
        while True:
            idle = self._clock() - self.last
            if self.owed and idle >= self.seconds:
                raise StreamStalledError(
                    f"{self.name}: no progress for {idle:.1f} s (watchdog {self.seconds:g} s)"
                )
            await self._sleep(max(self.seconds - idle, 0.0) if self.owed else min(self.seconds, 1.0) / 4)


async def requests_watched(items: AsyncIterator[T], dog: Watchdog) -> AsyncIterator[T]:
    """A client stream's requests: each is owed to the transport until gRPC takes it (the generator
    resumes only once the write went through flow control); after the last one, the response is owed."""
    async for item in items:
        dog.expect()
        yield item
        dog.progress()
        dog.expect(False)
    dog.expect()  # half-closed: the response is owed now


async def guarded(dog: Watchdog, work: Awaitable[T]) -> T:
    """``work``'s result, unless ``dog`` fires first: then ``work`` is cancelled (which cancels its RPC)
    and StreamStalledError is raised."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.create_task(dog.watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        watcher.result()  # raises StreamStalledError
        raise AssertionError("a watchdog returned")
    finally:
        for left in await cancel_all((task, watcher), GUARD_GRACE):
            log.error(
                "stream task did not end when cancelled; abandoned", stream=dog.name, stack=stack_of(left)
            )


async def cancel_all(
    tasks: Iterable[asyncio.Future[Any]], grace: float = CANCEL_GRACE
) -> list[asyncio.Future[Any]]:
    """Cancel the tasks and wait up to ``grace`` seconds for them to end; returns those that did not.
    The outcomes of those that ended are consumed (no "exception was never retrieved")."""
    tasks = list(tasks)
    running = [t for t in tasks if not t.done()]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=grace)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()
    left = [t for t in running if not t.done()]
    for task in left:  # should an abandoned task end later, its outcome is read then
        task.add_done_callback(_outcome_read)
    return left


def _outcome_read(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("an abandoned task ended with an error", error=repr(task.exception()))


def stack_of(task: asyncio.Future[Any]) -> str:
    """Where ``task`` is waiting, as a short traceback."""
    if not isinstance(task, asyncio.Task):
        return repr(task)
    out = io.StringIO()
    task.print_stack(limit=12, file=out)
    return out.getvalue()
