"""`make setup` waits out a busy package lock instead of failing (a stand-in apt-get on PATH that is busy
twice, then works; and one that fails for another reason, which is not retried)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.apt import apt_get

BUSY_TWICE = """#!/bin/sh
n=$(cat "$0.count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$0.count"
echo "$@" >> "$0.args"
if [ $n -le 2 ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
  exit 100
fi
echo "installed"
"""
BROKEN = """#!/bin/sh
n=$(cat "$0.count" 2>/dev/null || echo 0); echo $((n + 1)) > "$0.count"
echo "E: Unable to locate package nosuchpackage" >&2
exit 100
"""


def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    tool = tmp_path / "apt-get"
    tool.write_text(script)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    return tool


def test_busy_lock_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = fake_apt(tmp_path, monkeypatch, BUSY_TWICE)
    proc = apt_get(["install", "-y", "postgresql"], wait_seconds=0)
    assert (proc.returncode, proc.stdout.strip()) == (0, "installed")
    assert Path(f"{tool}.count").read_text().strip() == "3"
    assert "-o DPkg::Lock::Timeout=120 install -y postgresql" in Path(f"{tool}.args").read_text()
    assert capsys.readouterr().out.count("another process holds the package lock") == 2


def test_other_failures_are_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = fake_apt(tmp_path, monkeypatch, BROKEN)
    proc = apt_get(["install", "-y", "nosuchpackage"], wait_seconds=0)
    assert proc.returncode == 100
    assert "Unable to locate package" in proc.stderr
    assert Path(f"{tool}.count").read_text().strip() == "1"


def test_a_lock_still_busy_after_the_last_attempt_returns_that_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = fake_apt(tmp_path, monkeypatch, BUSY_TWICE)
    proc = apt_get(["update"], attempts=2, wait_seconds=0)
    assert proc.returncode == 100
    assert "Could not get lock" in proc.stderr
    assert Path(f"{tool}.count").read_text().strip() == "2"
