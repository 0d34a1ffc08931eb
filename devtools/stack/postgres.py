"""A real PostgreSQL server for development and tests: found or installed, then initdb/pg_ctl."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.apt import apt_get
from devtools.stack.proc import (
    StackError,
    check_traversable,
    ensure_user,
    is_root,
    pid_alive,
    run_as,
    running_pid,
)

DB_NAME = "storywire"
DB_USER = "storywire"
RUN_AS_ROOT_USER = "postgres"


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def find_pg_bindir() -> Path | None:
    """Directory holding initdb/pg_ctl/postgres: $STORYWIRE_PG_BINDIR, pg_config, Debian's layout, PATH."""
    candidates: list[str] = []
    if env := os.environ.get("STORYWIRE_PG_BINDIR"):
        candidates.append(env)
    if pg_config := shutil.which("pg_config"):
        proc = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            candidates.append(proc.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).resolve().parent))
    for cand in candidates:
        path = Path(cand)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file() and (path / "postgres").is_file():
            return path
    return None


def install_postgres() -> Path:
    """Return the PostgreSQL bindir, installing Debian's server package first when missing (root only)."""
    found = find_pg_bindir()
    if found:
        return found
    if not (is_root() and shutil.which("apt-get")):
        raise StackError(
            "no PostgreSQL server binaries found (initdb, pg_ctl, postgres). Install your distribution's "
            "PostgreSQL server package (Debian: `sudo apt-get install postgresql`) or set "
            "STORYWIRE_PG_BINDIR to the directory that holds them."
        )
    print("installing PostgreSQL from the distribution's packages (apt-get)...", flush=True)
    for args in (
        ["update", "-q"],
        ["install", "-y", "-q", "--no-install-recommends", "postgresql", "postgresql-contrib"],
    ):
        proc = apt_get(args)
        if proc.returncode != 0:
            raise StackError(f"apt-get {' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    found = find_pg_bindir()
    if not found:
        raise StackError("apt-get installed postgresql but initdb/pg_ctl were not found afterwards")
    return found


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in ``state_dir/postgres`` listening on 127.0.0.1:``port`` (TCP only)."""

    state_dir: Path
    port: int
    bindir: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "postgres" / "data"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "postgres" / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def _bin(self, name: str) -> str:
        if self.bindir is None:
            self.bindir = find_pg_bindir()
            if self.bindir is None:
                raise StackError(
                    "PostgreSQL binaries not found; run `make setup` (or set STORYWIRE_PG_BINDIR)"
                )
        return str(self.bindir / name)

    def _owner(self) -> str | None:
        """initdb refuses to run as root: then everything runs as the `postgres` system user."""
        return ensure_user(RUN_AS_ROOT_USER) if is_root() else None

    def pid(self) -> int | None:
        return running_pid(self.data_dir / "postmaster.pid")

    def start(self, timeout: float = 60.0) -> None:
        """initdb on first use, then start and wait until it accepts connections."""
        owner = self._owner()
        pg_root = self.data_dir.parent
        pg_root.mkdir(parents=True, exist_ok=True)
        if owner:
            check_traversable(pg_root, owner)
            shutil.chown(pg_root, owner, owner)
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            run_as(
                owner,
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    DB_USER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
            )
        if self.pid() is None:
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                "-c max_connections=200 -c shared_buffers=128MB"
            )
            run_as(
                owner,
                [
                    self._bin("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                ],
            )
        if fresh:
            run_as(
                owner,
                [self._bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, DB_NAME],
            )

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown through pg_ctl (postmaster.pid), then make sure the postmaster is gone."""
        pid = self.pid()
        if pid is None:
            return
        run_as(
            self._owner(),
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
                "stop",
            ],
        )
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            raise StackError(f"PostgreSQL (pid {pid}) did not stop within {timeout}s")
