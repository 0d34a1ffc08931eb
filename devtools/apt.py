"""``apt-get`` for setup, patient with a busy package lock.

Another apt or dpkg (unattended-upgrades, a parallel setup) holds the lock for a while: apt waits up to
two minutes for the dpkg lock itself (``DPkg::Lock::Timeout``), and a run that still fails on a lock
(``apt-get update``'s list lock is not covered by that option) is retried with a message, up to
``attempts`` times. Any other failure is returned at once.
"""

from __future__ import annotations

import os
import subprocess

from runtime.retry import Backoff, Retry

__all__ = ["LOCK_MESSAGES", "apt_get"]

LOCK_MESSAGES = ("Could not get lock", "Unable to acquire the dpkg frontend lock", "Unable to lock directory")


class _LockBusy(Exception):
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__("the package lock is busy")
        self.proc = proc


def apt_get(
    args: list[str], attempts: int = 20, wait_seconds: float = 6.0
) -> subprocess.CompletedProcess[str]:
    """Run ``apt-get ARGS`` non-interactively; retry while the package lock is busy (the runtime's retry
    policy, with a fixed wait)."""
    argv = ["apt-get", "-o", "DPkg::Lock::Timeout=120", *args]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Backoff(attempts=attempts, initial=wait_seconds, maximum=wait_seconds, jitter=0)

    def say(retry: Retry) -> None:
        print(
            f"apt-get {args[0]}: another process holds the package lock; "
            f"retrying in {retry.wait:g} s ({retry.number}/{attempts})",
            flush=True,
        )

    try:
        for attempt in policy.retries_blocking(_LockBusy, report=say):
            with attempt:
                proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
                if proc.returncode != 0 and any(m in proc.stderr for m in LOCK_MESSAGES):
                    raise _LockBusy(proc)
    except _LockBusy as exc:
        return exc.proc  # still busy after the last attempt
    return proc
