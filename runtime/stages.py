"""The pipeline's stage names, one map for all who name stages: the store (the keys of a job's stage
counters in PostgreSQL, so they must not change), the CLI's timing table and the benchmarks' figures."""

from __future__ import annotations

from storywire.v1 import common_pb2

__all__ = ["STAGE_NAMES", "STAGE_VALUES"]

STAGE_NAMES: dict[common_pb2.Stage.ValueType, str] = {
    common_pb2.STAGE_FETCH: "fetch",
    common_pb2.STAGE_CLUSTER: "cluster",
    common_pb2.STAGE_SYNTHESIZE: "synthesize",
    common_pb2.STAGE_STORE: "store",
}
STAGE_VALUES = {name: stage for stage, name in STAGE_NAMES.items()}
