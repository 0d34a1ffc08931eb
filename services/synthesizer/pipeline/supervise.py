"""Run a job attempt's pipeline tasks to their end, and never hang on them.

The streams are watched one by one (``watchdog.py``); this is the net under them. Two ways a task could
otherwise hold an attempt forever while its lease is still renewed (seen twice in full test runs: a job
stayed in STORING for minutes after its last story was stored, with no watchdog firing):
- the attempt makes no progress for longer than the caller's idle limit (``idle_limit``: set once the LLM
  work is over, when what is left are store writes, each watched by a 20 s watchdog): no task ends and no
  watched stream sends or receives a message (the ``Activity`` its watchdogs report to), so a slow store
  that takes message after message is not a stall. StreamStalledError names the tasks still running,
  and their stacks are logged, so that the attempt is given back and retried;
- a task that does not end when cancelled: it is abandoned after ``grace`` seconds, with its stack
  logged, instead of holding the attempt."""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Iterable
from typing import Any

from runtime.logging import get_logger
from services.synthesizer.pipeline.watchdog import (
    CANCEL_GRACE,
    Activity,
    StreamStalledError,
    cancel_all,
    stack_of,
)

log = get_logger(__name__)

Task = asyncio.Task[Any]


async def supervise(
    work: Iterable[Task],
    guards: Iterable[Task],
    idle_limit: Callable[[], float | None],
    activity: Activity | None = None,
    grace: float = CANCEL_GRACE,
) -> None:
    """Wait until every ``work`` task has ended, re-raising the first failure of a work task or a guard
    (a guard that ends quietly just stops guarding). When ``idle_limit()`` gives a number and the
    attempt does not move within it (no work task ends, ``activity`` is not touched), StreamStalledError.
    Every task is cancelled on the way out."""
    activity = activity or Activity()
    pending, watching = set(work), set(guards)
    everything = pending | watching
    try:
        while pending:
            limit, since = idle_limit(), activity.last
            timeout = None if limit is None else max(limit - activity.idle(), 0.0)
            done, _ = await asyncio.wait(pending | watching, timeout=timeout, return_when=FIRST_COMPLETED)
            if not done and limit is not None and activity.last == since:
                raise _stalled(pending, limit)
            for task in done:
                task.result()  # the first failure: cancellation, lost lease, an RPC error
            if done & pending:
                activity.touch()
            pending -= done
            watching -= done
    finally:
        for left in await cancel_all(everything, grace):
            assert isinstance(left, asyncio.Task)  # supervise is given tasks
            log.error("pipeline task did not end when cancelled; abandoned", task=left.get_name(),
                      stack=stack_of(left))  # fmt: skip


def _stalled(pending: set[Task], limit: float) -> StreamStalledError:
    for task in pending:
        log.error("pipeline task stalled", task=task.get_name(), seconds=limit, stack=stack_of(task))
    names = ", ".join(sorted(t.get_name() for t in pending))
    return StreamStalledError(
        f"no pipeline progress (no task ended, no stream moved) for {limit:g} s; still running: {names}"
    )
