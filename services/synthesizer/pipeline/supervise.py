"""Run a job attempt's pipeline tasks to their end, and never hang on them.

The streams are watched one by one (``watchdog.py``); this is the net under them. Two ways a task could
otherwise hold an attempt forever while its lease is still renewed (seen twice in full test runs: a job
stayed in STORING for minutes after its last story was stored, with no watchdog firing):
- no task ends for longer than the caller's idle limit (``idle_limit``: set once the LLM work is over,
  when what is left are store writes, each watched by a 20 s watchdog): StreamStalledError names the
  tasks still running, and their stacks are logged, so that the attempt is given back and retried;
- a task that does not end when cancelled: it is abandoned after ``grace`` seconds, with its stack
  logged, instead of holding the attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from runtime.logging import get_logger
from services.synthesizer.pipeline.watchdog import CANCEL_GRACE, StreamStalledError, cancel_all, stack_of

log = get_logger(__name__)

Task = asyncio.Task[Any]


async def supervise(
    work: Iterable[Task],
    guards: Iterable[Task],
    idle_limit: Callable[[], float | None],
    grace: float = CANCEL_GRACE,
) -> None:
    """Wait until every ``work`` task has ended, re-raising the first failure of a work task or a guard
    (a guard that ends quietly just stops guarding). When ``idle_limit()`` gives a number and no task
    ends within it, StreamStalledError. Every task is cancelled on the way out."""
    pending, watching = set(work), set(guards)
    everything = pending | watching
    try:
        while pending:
            limit = idle_limit()
            done, _ = await asyncio.wait(
                pending | watching, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                names = ", ".join(sorted(t.get_name() for t in pending))
                for task in pending:
                    log.error(
                        "pipeline task stalled", task=task.get_name(), seconds=limit, stack=stack_of(task)
                    )
                raise StreamStalledError(f"no pipeline task ended for {limit:g} s; still running: {names}")
            for task in done:
                task.result()  # the first failure: cancellation, lost lease, an RPC error
            pending -= done
            watching -= done
    finally:
        for left in await cancel_all(everything, grace):
            assert isinstance(left, asyncio.Task)  # supervise is given tasks
            log.error("pipeline task did not end when cancelled; abandoned", task=left.get_name(),
                      stack=stack_of(left))  # fmt: skip
