"""``python -m services.<name> --help`` prints usage and every setting instead of starting the server."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic_settings import BaseSettings

from devtools.services import ROOT
from runtime.settings import env_name
from services.fetcher.settings import FetcherSettings
from services.store.settings import StoreSettings
from services.synthesizer.settings import SynthesizerSettings

SERVICES: list[tuple[str, type[BaseSettings]]] = [
    ("store", StoreSettings),
    ("fetcher", FetcherSettings),
    ("synthesizer", SynthesizerSettings),
]


def python_m(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    # an unreachable database: a service that started instead of printing help would not exit by itself
    env = {"PATH": "/usr/bin:/bin", "STORYWIRE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("name", "settings"), SERVICES)
def test_help_prints_usage_and_settings(name: str, settings: type[BaseSettings]) -> None:
    for flag in ("--help", "-h"):
        result = python_m(f"services.{name}", flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: python -m services.{name} [--help]")
        for field, info in settings.model_fields.items():
            assert f"  {env_name(field)} = " in result.stdout, field
            assert str(info.description) in result.stdout
        assert "listening" not in result.stdout + result.stderr


@pytest.mark.parametrize(("name", "settings"), SERVICES)
def test_unknown_arguments_exit_2(name: str, settings: type[BaseSettings]) -> None:
    result = python_m(f"services.{name}", "--port", "9")
    assert result.returncode == 2
    assert f"storywire-{name}: unexpected arguments: --port 9" in result.stderr
    assert "usage: python -m" in result.stderr
