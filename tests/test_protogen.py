"""Generated code is committed and checked for drift."""

from __future__ import annotations

import shutil
from pathlib import Path

from devtools import protogen


def test_committed_code_matches_protos() -> None:
    assert protogen.check() == []


def test_changed_proto_without_regenerating_is_detected(tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(protogen.PROTO_ROOT, protos)
    common = protos / "storywire" / "v1" / "common.proto"
    common.write_text(
        common.read_text().replace(
            "  bool estimated = 3;\n",
            "  bool estimated = 3;\n  // A new field.\n  int64 cached_tokens = 4;\n",
        )
    )
    problems = protogen.check(proto_root=protos)
    assert "differs: v1/common_pb2.py" in problems
    assert "differs: v1/common_pb2.pyi" in problems
