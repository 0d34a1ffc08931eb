"""The import rules of docs/architecture.md ("Boundaries"), checked over the import graph of every
hand-written module (parsed with ``ast``: no code is imported or run), and the checker shown to fail
on a planted violation of each rule."""

from __future__ import annotations

import ast
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("runtime", "services", "cli", "devtools", "bench", "tests", "gen")
SERVICES = ("fetcher", "store", "synthesizer")
LLM = "services.synthesizer.llm"
# what the CLI may use of the runtime (its client side)
CLI_RUNTIME = {"runtime.client", "runtime.retry", "runtime.stages", "runtime.stubs", "runtime.telemetry"}
DEV_ONLY = ("devtools", "bench", "tests")

Graph = dict[str, set[str]]


def module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (functions, TYPE_CHECKING blocks included);
    ``from a import b`` counts as ``a`` and ``a.b`` (b may be a submodule)."""
    module = module_of(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path = ROOT) -> Graph:
    """Module -> the modules it imports (gen/'s generated modules are named ``gen.storywire...``)."""
    graph: Graph = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            graph[module_of(path, root)] = imports_of(path, root)
    return graph


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _service(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" and parts[1] in SERVICES else None


def _shipped(module: str) -> bool:
    return any(_within(module, package) for package in ("runtime", "services", "cli"))


# (rule, whether ``module`` importing ``name`` breaks it)
RULES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("a service imports another service", lambda m, n: len({_service(m), _service(n)} - {None}) == 2),
    (
        "llm/ imports the rest of the synthesizer",
        lambda m, n: _within(m, LLM) and _within(n, "services.synthesizer") and not _within(n, LLM),
    ),
    (
        "the runtime imports a service or the CLI",
        lambda m, n: _within(m, "runtime") and (_within(n, "services") or _within(n, "cli")),
    ),
    (
        "the client helpers import the server",
        lambda m, n: m == "runtime.client" and _within(n, "runtime.server"),
    ),
    ("the CLI imports a service", lambda m, n: _within(m, "cli") and _within(n, "services")),
    (
        f"the CLI uses only {sorted(CLI_RUNTIME)} of the runtime",
        lambda m, n: (
            _within(m, "cli")
            and _within(n, "runtime")
            and n != "runtime"
            and not any(_within(n, allowed) for allowed in CLI_RUNTIME)
        ),
    ),
    (
        "shipped code imports development code",
        lambda m, n: _shipped(m) and any(_within(n, dev) for dev in DEV_ONLY),
    ),
    (
        "generated code imports hand-written code",
        lambda m, n: _within(m, "gen") and any(_within(n, p) for p in PACKAGES if p != "gen"),
    ),
]


def violations(graph: Graph) -> list[str]:
    """One line per import that breaks a rule of docs/architecture.md."""
    return [
        f"{module} imports {name}: {rule}"
        for module, imported in sorted(graph.items())
        for name in sorted(imported)
        for rule, broken in RULES
        if broken(module, name)
    ]


def test_the_tree_follows_the_import_rules() -> None:
    graph = import_graph()
    # the graph is real: every package is there, with the edges we know of
    assert "runtime.server" in graph["services.store.__main__"]
    assert "runtime.client" in graph["cli.client"]
    assert "services.synthesizer.llm.limiter" in graph["services.synthesizer.llm.caller"]
    assert len(graph) > 100
    assert violations(graph) == []


PLANTS = [
    ("services/fetcher/run.py", "from services.store import jobs", "a service imports another service"),
    ("services/synthesizer/llm/client.py", "from services.synthesizer.stories import grounding", "llm/"),
    ("services/synthesizer/llm/cache.py", "from ..stories import prompt", "llm/"),  # relative
    ("services/synthesizer/llm/limiter.py", "import services.synthesizer.text", "llm/"),
    ("runtime/ids.py", "from services.store.jobs import Jobs", "the runtime imports a service"),
    ("runtime/logging.py", "import cli.main", "the runtime imports a service or the CLI"),
    (
        "runtime/client.py",
        "from runtime.server import server_options",
        "the client helpers import the server",
    ),
    ("cli/render.py", "from services.store.convert import STAGE_NAMES", "the CLI imports a service"),
    ("cli/render.py", "from runtime.settings import env_name", "the CLI uses only"),
    ("services/store/jobs.py", "from devtools.stack import Stack", "shipped code imports development code"),
    ("gen/storywire/v1/common_pb2.py", "from runtime import ids", "generated code imports hand-written code"),
]


@pytest.mark.parametrize(("path", "line", "rule"), PLANTS)
def test_a_planted_violation_fails_the_check(tmp_path: Path, path: str, line: str, rule: str) -> None:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "data")
        )
    assert violations(import_graph(tmp_path)) == []  # the copy is clean
    target = tmp_path / path
    target.write_text(target.read_text() + f"\n\ndef _planted() -> None:\n    {line}  # noqa\n")
    found = violations(import_graph(tmp_path))
    module = module_of(target, tmp_path)
    assert found, f"{line!r} in {path} went unnoticed"
    assert all(v.startswith(f"{module} imports ") for v in found), found
    assert any(rule in v for v in found), found
