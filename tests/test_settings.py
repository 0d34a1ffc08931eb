"""The runtime's settings: typed, documented defaults, clear errors for bad values."""

from __future__ import annotations

import pytest

from runtime.settings import CommonSettings, RedisSettings, SettingsError, env_name, load_settings
from services.fetcher.settings import FetcherSettings
from services.store.settings import StoreSettings
from services.synthesizer.settings import SynthesizerSettings


def test_defaults_are_loopback_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("STORYWIRE_BIND_HOST", "STORYWIRE_LOG_FORMAT", "STORYWIRE_STORE_PORT"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(StoreSettings)
    assert settings.bind_host == "127.0.0.1"
    assert settings.log_format == "json"
    assert settings.store_port == 50053


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYWIRE_FETCHER_PORT", "6000")
    monkeypatch.setenv("STORYWIRE_LOG_LEVEL", "DEBUG")
    settings = load_settings(FetcherSettings)
    assert settings.fetcher_port == 6000
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("STORYWIRE_STORE_PORT", "not-a-port", "valid integer"),
        ("STORYWIRE_STORE_PORT", "70000", "less than or equal to 65535"),
        ("STORYWIRE_LOG_LEVEL", "LOUD", "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("STORYWIRE_MAX_MESSAGE_BYTES", "10", "greater than or equal to 65536"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as info:
        load_settings(StoreSettings)
    message = str(info.value)
    assert f"{var}={value!r}" in message
    assert fragment in message


def test_every_field_maps_to_one_documented_variable() -> None:
    seen: dict[str, str] = {}
    for cls in (FetcherSettings, SynthesizerSettings, StoreSettings):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"
            var = env_name(name)
            if name not in CommonSettings.model_fields and var in seen:
                # a shared variable must mean the same thing in every service
                assert seen[var] == field.description, var
            seen[var] = field.description or ""


def test_every_setting_is_declared_once() -> None:
    """Settings that several services read live in one shared class (CommonSettings, RedisSettings),
    never declared again in a service's own."""
    declared: dict[str, list[str]] = {}
    for cls in (CommonSettings, RedisSettings, FetcherSettings, SynthesizerSettings, StoreSettings):
        for name in cls.__annotations__:
            if name in cls.model_fields:
                declared.setdefault(name, []).append(cls.__name__)
    twice = {name: owners for name, owners in declared.items() if len(owners) > 1}
    assert twice == {}
    assert declared["redis_url"] == ["RedisSettings"]


def test_readme_settings_table_is_current() -> None:
    from pathlib import Path

    from devtools.settings_doc import render

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert render() in readme, "README settings table is stale: run `python -m devtools.settings_doc --write`"
