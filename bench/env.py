"""What a scenario gets: the local PostgreSQL/Redis stack (started once) and the size mode."""

from __future__ import annotations

from dataclasses import dataclass

from devtools.stack import StackInfo


@dataclass(frozen=True)
class BenchEnv:
    stack: StackInfo
    quick: bool

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full
