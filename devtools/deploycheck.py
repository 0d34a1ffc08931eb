"""Validate the deployment files offline: kustomize overlays rendered and checked against the Kubernetes
schemas, every compose combination through ``docker-compose config``, the Dockerfile through hadolint.

``python -m devtools.deploycheck install`` installs Debian's docker-compose when it is missing and we are
root (kubectl, kubernetes-validate and hadolint come from the dev dependencies); ``check`` runs it all.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devtools.apt import apt_get

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "k8s" / "overlays").glob("*/kustomization.yaml"))
COMPOSE_BASE = DEPLOY / "compose" / "compose.yaml"
COMPOSE_OVERLAYS = sorted(p for p in (DEPLOY / "compose").glob("compose.*.yaml"))
K8S_VERSION = "1.32.0"


class CheckError(Exception):
    pass


def tool(name: str) -> str:
    """A tool from this interpreter's environment first (the dev dependencies), else PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise CheckError(f"{name} not found; run `make setup`")
    return found


def _run(argv: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CheckError(f"{' '.join(argv[:3])} ... failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


def render(overlay: Path) -> str:
    return _run([tool("kubectl"), "kustomize", str(overlay)])


def validate_manifests(rendered: str, name: str) -> None:
    with tempfile.NamedTemporaryFile("w", prefix=f"storywire-{name}-", suffix=".yaml") as fh:
        fh.write(rendered)
        fh.flush()
        _run([tool("kubernetes-validate"), "-k", K8S_VERSION, "--strict", "--quiet", fh.name])


def compose_combinations() -> list[list[Path]]:
    combos: list[list[Path]] = []
    for n in range(len(COMPOSE_OVERLAYS) + 1):
        combos += [[COMPOSE_BASE, *extra] for extra in itertools.combinations(COMPOSE_OVERLAYS, n)]
    return combos


def compose_config(files: list[Path]) -> None:
    argv = [tool("docker-compose")]
    for f in files:
        argv += ["-f", str(f)]
    _run([*argv, "config", "-q"])


def lint_dockerfile(path: Path = DEPLOY / "Dockerfile") -> None:
    _run([tool("hadolint"), str(path)])


def install() -> None:
    if shutil.which("docker-compose"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("docker-compose missing and not root: compose validation will be skipped", file=sys.stderr)
        return
    for args in (["update", "-q"], ["install", "-y", "-q", "--no-install-recommends", "docker-compose"]):
        proc = apt_get(args)
        if proc.returncode != 0:
            sys.exit(f"apt-get {' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def check() -> None:
    for overlay in OVERLAYS:
        validate_manifests(render(overlay), overlay.name)
        print(f"k8s overlay {overlay.name}: rendered and valid for Kubernetes {K8S_VERSION}")
    if shutil.which("docker-compose") or (Path(sys.executable).parent / "docker-compose").is_file():
        for files in compose_combinations():
            compose_config(files)
            print("compose " + " + ".join(f.name for f in files) + ": valid")
    else:
        print("compose files: SKIPPED, docker-compose is not installed (make setup installs it as root)")
    lint_dockerfile()
    print("Dockerfile: hadolint clean")


if __name__ == "__main__":
    try:
        install() if sys.argv[1:] == ["install"] else check()
    except (CheckError, subprocess.CalledProcessError) as exc:
        print(f"deploy check failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
