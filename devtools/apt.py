"""``apt-get`` for setup, patient with a busy package lock.

Another apt or dpkg (unattended-upgrades, a parallel setup) holds the lock for a while: apt waits up to
two minutes for the dpkg lock itself (``DPkg::Lock::Timeout``), and a run that still fails on a lock
(``apt-get update``'s list lock is not covered by that option) is retried with a message, up to
``attempts`` times. Any other failure is returned at once.
"""

from __future__ import annotations

import os
import subprocess
import time

__all__ = ["LOCK_MESSAGES", "apt_get"]

LOCK_MESSAGES = ("Could not get lock", "Unable to acquire the dpkg frontend lock", "Unable to lock directory")


def apt_get(
    args: list[str], attempts: int = 20, wait_seconds: float = 6.0
) -> subprocess.CompletedProcess[str]:
    """Run ``apt-get ARGS`` non-interactively; retry while the package lock is busy."""
    argv = ["apt-get", "-o", "DPkg::Lock::Timeout=120", *args]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in range(1, attempts + 1):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        busy = proc.returncode != 0 and any(m in proc.stderr for m in LOCK_MESSAGES)
        if not busy or attempt == attempts:
            return proc
        print(
            f"apt-get {args[0]}: another process holds the package lock; "
            f"retrying in {wait_seconds:g} s ({attempt}/{attempts})",
            flush=True,
        )
        time.sleep(wait_seconds)
    raise AssertionError("unreachable")  # pragma: no cover
