"""The deployment files carry the security model: tokens mounted as secrets everywhere, TLS mounted
from a Secret in production (probes that can speak TLS), compose with TLS and tokens from secrets."""

from __future__ import annotations

from pathlib import Path

import yaml  # type: ignore[import-untyped]

from devtools import deploycheck
from devtools.secrets import FILES, write_secrets
from runtime.settings import load_settings
from services.store.settings import StoreSettings

SERVICES = ("storywire-store", "storywire-fetcher", "storywire-synthesizer")


def rendered(overlay: str) -> list[dict]:  # type: ignore[type-arg]
    docs = yaml.safe_load_all(deploycheck.render(deploycheck.DEPLOY / "k8s" / "overlays" / overlay))
    return [d for d in docs if d]


def deployments(docs: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def config(docs: list[dict]) -> dict[str, str]:  # type: ignore[type-arg]
    maps = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("storywire-config")
    ]
    data: dict[str, str] = maps[0]["data"]
    return data


def test_production_has_tls_tokens_and_tls_capable_probes() -> None:
    docs = rendered("production")
    env = config(docs)
    assert env["STORYWIRE_TLS_CERT_FILE"] == "/etc/storywire/tls/tls.crt"
    assert env["STORYWIRE_TLS_CA_FILE"] == "/etc/storywire/tls/ca.crt"
    assert "STORYWIRE_INSECURE" not in env
    for name in SERVICES:
        spec = deployments(docs)[name]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == "storywire-tls"
        assert volumes["tokens"]["secret"]["secretName"] == "storywire-tokens"
        mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert (mounts["tls"], mounts["tokens"]) == ("/etc/storywire/tls", "/run/secrets")
        probe = spec["containers"][0]["readinessProbe"]
        assert probe["exec"]["command"] == ["python", "-m", "runtime.healthcheck"], name


def test_dev_is_explicitly_insecure_but_still_has_tokens() -> None:
    docs = rendered("dev")
    assert config(docs)["STORYWIRE_INSECURE"] == "true"
    for name in SERVICES:
        spec = deployments(docs)[name]["spec"]["template"]["spec"]
        assert {v["name"] for v in spec["volumes"]} >= {"tokens"}
        assert "grpc" in spec["containers"][0]["readinessProbe"]


def test_compose_mounts_tls_and_tokens_as_secrets() -> None:
    compose = yaml.safe_load(deploycheck.COMPOSE_BASE.read_text())
    for name in ("store", "fetcher", "synthesizer"):
        service = compose["services"][name]
        assert set(service["secrets"]) == set(compose["secrets"])
        assert service["environment"]["STORYWIRE_TLS_CERT_FILE"] == "/run/secrets/storywire_tls_cert"
    files = {s["file"].removeprefix("./secrets/") for s in compose["secrets"].values()}
    assert files == set(FILES)


def test_secret_files_are_what_the_settings_read(tmp_path: Path) -> None:
    written = write_secrets(tmp_path)
    assert sorted(p.name for p in written) == sorted(FILES)
    assert write_secrets(tmp_path) == []  # kept
    token = (tmp_path / "service-token").read_text()
    # the token files are read by name from a secrets directory, as /run/secrets in the containers
    (tmp_path / "storywire_service_token").write_text(token)
    settings = StoreSettings(_secrets_dir=str(tmp_path))  # type: ignore[call-arg]
    assert settings.service_token.get_secret_value() == token
    assert load_settings(StoreSettings).service_token.get_secret_value() != token
