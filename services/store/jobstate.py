"""The job state machine: the one place that says which transitions are allowed."""

from __future__ import annotations

from storywire.v1 import common_pb2

JobState = common_pb2.JobState

QUEUED = "queued"
FETCHING = "fetching"
SYNTHESIZING = "synthesizing"
STORING = "storing"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"

FINAL = frozenset({DONE, FAILED, CANCELLED})
#: where a claimed job (re)starts: a new attempt after a dead worker's lease expired runs it from the top,
#: which is safe because every write is idempotent
RESTART = FETCHING
#: where a released job goes (its worker failed on infrastructure or is stopping and gave it back at once,
#: instead of letting its lease expire): queued again, with its progress
RELEASED = QUEUED
ORDER = (QUEUED, FETCHING, SYNTHESIZING, STORING, DONE)

TO_PROTO: dict[str, common_pb2.JobState.ValueType] = {
    QUEUED: JobState.JOB_STATE_QUEUED,
    FETCHING: JobState.JOB_STATE_FETCHING,
    SYNTHESIZING: JobState.JOB_STATE_SYNTHESIZING,
    STORING: JobState.JOB_STATE_STORING,
    DONE: JobState.JOB_STATE_DONE,
    FAILED: JobState.JOB_STATE_FAILED,
    CANCELLED: JobState.JOB_STATE_CANCELLED,
}
FROM_PROTO = {v: k for k, v in TO_PROTO.items()}


class TransitionError(ValueError):
    """The requested state change is not allowed."""


def check_transition(current: str, target: str) -> None:
    """Allow forward moves along queued -> fetching -> synthesizing -> storing -> done (stages may be
    skipped, e.g. a job with no clusters), staying put, and failed/cancelled from any non-final state."""
    if current in FINAL:
        if target == current:
            return
        raise TransitionError(f"job is already {current}")
    if target in (FAILED, CANCELLED):
        return
    if target not in ORDER:
        raise TransitionError(f"unknown state {target!r}")
    if ORDER.index(target) < ORDER.index(current):
        raise TransitionError(f"cannot go back from {current} to {target}")


def state_name(value: common_pb2.JobState.ValueType) -> str:
    try:
        return FROM_PROTO[value]
    except KeyError:
        raise TransitionError(f"state {value} is not a valid target") from None
