"""Session fixtures: a real PostgreSQL and Redis on free loopback ports, always stopped at the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.stack import Stack, StackInfo
from runtime.logging import configure_logging

# logs go through stdlib logging as in the services, so caplog sees them
configure_logging("tests", "INFO", "console")


def make_state_dir() -> Path:
    # world-traversable: as root, PostgreSQL runs as the `postgres` user and must reach its data dir
    path = Path(tempfile.mkdtemp(prefix="storywire-test-"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def stack() -> Iterator[StackInfo]:
    """PostgreSQL + Redis for the whole session (started once, stopped even when tests fail)."""
    state = make_state_dir()
    local = Stack(state)
    try:
        yield local.up()
    finally:
        local.down()
        shutil.rmtree(state, ignore_errors=True)
