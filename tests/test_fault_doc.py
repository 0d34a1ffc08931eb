"""docs/reliability.md's fault table comes from a committed results file of ``make faults``: the doc's
generated block equals what ``devtools.faulttable.markdown_table`` makes of the file it cites, and every
row of that file reports no story lost and none duplicated."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from devtools.faulttable import BLOCK, DOC, ROOT, markdown_table


def cited() -> tuple[Path, str]:
    block = BLOCK.search(DOC.read_text())
    assert block is not None, "docs/reliability.md has no generated fault table"
    return ROOT / block["file"], block["table"]


def test_the_doc_table_matches_its_committed_results_file() -> None:
    path, table = cited()
    assert path.is_file(), f"{path} is cited but not in the repository"
    relative = str(path.relative_to(ROOT))
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", relative], cwd=ROOT, capture_output=True, check=False
    )
    assert tracked.returncode == 0, f"{relative} is not committed"
    assert table == markdown_table(path), (
        f"the fault table is stale: run python -m devtools.faulttable write {relative}"
    )


def test_the_cited_run_lost_and_duplicated_nothing() -> None:
    path, _ = cited()
    rows = json.loads(path.read_text())["rows"]
    assert rows, "the cited fault run has no rows"
    for row in rows:
        assert (row["lost"], row["duplicated"]) == (0, 0), row
