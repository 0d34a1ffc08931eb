"""Small process and port helpers shared by the PostgreSQL and Redis launchers."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A local server could not be provisioned, started or stopped; the message says what to do."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for_port(port: int, what: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Wait until a process we started listens on ``port``; fail at once if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode}")
        time.sleep(0.05)
    raise StackError(f"{what} did not listen on port {port} within {timeout:g}s")


def is_root() -> bool:
    return os.geteuid() == 0


def run_as(user: str | None, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run argv (as ``user`` via runuser when given); raise StackError with its output on failure."""
    cmd = ["runuser", "-u", user, "--", *argv] if user else list(argv)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise StackError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    result: subprocess.CompletedProcess[str] = proc
    return result


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still answers kill(0); treat it as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def running_pid(pidfile: Path) -> int | None:
    """The pid on the first line of ``pidfile`` if that process is alive (None: no file, no pid, or gone)."""
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL if it is still there."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def ensure_user(name: str) -> str:
    """Return ``name`` if that system user exists, else create it (root only) and return it."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        run_as(None, ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
    return name


def check_traversable(path: Path, user: str) -> None:
    """Fail early, with the fix, when ``user`` could not reach ``path`` (for example a 0700 parent)."""
    for parent in [path, *path.parents]:
        if parent.exists() and not (parent.stat().st_mode & 0o001):
            raise StackError(
                f"{parent} is not traversable by the {user!r} user that PostgreSQL must run as when "
                f"storywire runs as root; choose a state directory under a world-traversable path "
                f"(chmod o+x {parent})"
            )
