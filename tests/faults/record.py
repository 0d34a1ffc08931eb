"""One row of the fault table in docs/reliability.md, measured by a fault test on real services.

Every fault test calls :func:`record` with what it measured. When ``STORYWIRE_FAULT_RECORD`` names a file
(``make faults`` sets it), the row is appended to it as one JSON line; ``python -m devtools.faulttable``
turns those lines into the committed results file and the doc's table. Without the variable (plain
``make test``), the row is only logged, so the suite asserts the same behaviour either way.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)
RECORD_ENV = "STORYWIRE_FAULT_RECORD"


@dataclass(frozen=True)
class FaultRow:
    """What one fault case did to a job (or to a set of requests)."""

    #: short name of the case, unique in the table ("kill -9 fetcher mid-job")
    case: str
    #: how the job (or each request) ended: "done", "failed: <reason>", "INVALID_ARGUMENT x60", ...
    outcome: str
    #: stories the job should have (clusters of the fault-free run); 0 where no job is involved
    stories_expected: int = 0
    #: stories stored (distinct cluster keys) when the job ended
    stories_stored: int = 0
    #: clusters of the fault-free run with no story at the end
    lost: int = 0
    #: stories beyond one per cluster key
    duplicated: int = 0
    #: LLM calls beyond those of the same job without the fault (None: not measured)
    extra_llm_calls: int | None = None
    #: seconds from the fault (or from the service coming back) to the job making progress again
    recovery_s: float | None = None
    #: seconds the whole job took beyond the same job without the fault
    extra_s: float | None = None
    notes: str = ""


def record(row: FaultRow) -> FaultRow:
    """Log the row and, under ``make faults``, append it to the record file. Returns the row."""
    log.info("fault case measured", extra={"fault": asdict(row)})
    target = os.environ.get(RECORD_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(row), separators=(",", ":")) + "\n")
    return row
