"""No hidden defaults in tests: every setting that the test fixtures (conftest modules, fixtures and the
helpers beside them, the service launcher) override is listed here, and any override beyond ports,
addresses, the loopback allow-list, data directories and the LLM URL fails, unless it is allow-listed
with a one-line reason and the default it replaces is covered by a test of its own."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: beyond the tests folder: the launcher every service subprocess of the tests goes through
EXTRA_SOURCES = [ROOT / "devtools" / "services.py"]
#: where the test points a service (never a behaviour of its own)
PLACES = re.compile(
    r"^STORYWIRE_(.*_PORT|.*_ADDRESS|DATABASE_URL|REDIS_URL|LLM_BASE_URL|OTLP_ENDPOINT|BIND_HOST"
    r"|FETCH_ALLOW_NETWORKS|.*_DIR)$"
)
#: setting -> (why the fixtures override it, the test that covers its default: path::function)
ALLOWED: dict[str, tuple[str, str]] = {
    "STORYWIRE_LOG_FORMAT": (
        "human-readable logs in test output",
        "tests/test_settings.py::test_defaults_are_loopback_and_json",
    ),
    "STORYWIRE_LLM_MODEL": (
        "the model name the unit tests send to the simulator (part of the LLM backend, like its URL)",
        "tests/e2e/test_jobs.py::test_job_runs_end_to_end_and_a_rerun_makes_no_llm_call",
    ),
    **{
        f"STORYWIRE_{name}": (
            "the e2e run with TLS and tokens on (issue 15); every other e2e test runs with them off",
            "tests/e2e/test_jobs.py::test_job_runs_end_to_end_and_a_rerun_makes_no_llm_call",
        )
        for name in ("TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CA_FILE", "CLIENT_TOKEN")
    },
    "STORYWIRE_WORKER_ENABLED": (
        "the edge tests drive a synthesizer's Synthesize RPC alone, with no job loop beside it",
        "tests/e2e/test_jobs.py::test_job_runs_end_to_end_and_a_rerun_makes_no_llm_call",
    ),
    "STORYWIRE_SHUTDOWN_GRACE_SECONDS": (
        "in-process servers of the edge tests stop at once at the end of each test",
        "tests/test_service_runtime.py::test_health_reflection_and_sigterm",
    ),
    "STORYWIRE_SERVICE_TOKEN": (
        "the workers' API refuses every caller without one; tests run as `make run` does, with a per-run one",
        "tests/edge/test_security.py::test_plain_client_cannot_claim_jobs_with_default_settings",
    ),
    "STORYWIRE_WORKER_STREAM_WATCHDOG_SECONDS": (
        "the hung-store tests wait out the watchdog up to three times",
        "tests/pipeline/test_watchdog.py::test_the_default_watchdog_fires_after_its_time_when_progress_is_owed",
    ),
    "STORYWIRE_FETCH_TIMEOUT_SECONDS": (
        "the hostile-server fetcher tests (slowloris, endless bodies) end in 3 s instead of 20 s",
        "tests/fetcher/test_defaults.py::test_the_default_total_timeout_ends_a_slowloris",
    ),
    "STORYWIRE_FETCH_MAX_BODY_BYTES": (
        "the oversized-body fetcher test sends 1 MB instead of 5 MB",
        "tests/fetcher/test_defaults.py::test_the_default_body_cap_refuses_a_larger_body",
    ),
}
ENV_KEY = re.compile(r"^STORYWIRE_[A-Z0-9_*]+$")


def env_name(keyword: str) -> str:
    return "STORYWIRE_" + keyword.upper()


def _key(node: ast.expr | None) -> str | None:
    """A constant (or f-string, with * for its fields) STORYWIRE_ key."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)  # type: ignore[misc]
    else:
        return None
    return text if ENV_KEY.match(text) else None


def _called(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def overrides_in(tree: ast.AST) -> Iterator[str]:
    """Settings a piece of code overrides: load_settings keywords, STORYWIRE_ keys of dicts and
    assignments, monkeypatch.setenv."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called(node) == "load_settings":
            yield from (env_name(k.arg) for k in node.keywords if k.arg)
        elif isinstance(node, ast.Call) and _called(node) == "setenv" and node.args:
            key = _key(node.args[0])
            if key:
                yield key
        elif isinstance(node, ast.Dict):
            yield from (k for k in map(_key, node.keys) if k)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and (key := _key(target.slice)):
                    yield key


def fixture_code(path: Path) -> Iterator[ast.AST]:
    """The parts of a module that set tests up: all of a conftest or of the launcher; elsewhere every
    top-level function that is not a test (fixtures and their helpers)."""
    tree = ast.parse(path.read_text(), str(path))
    if path.name == "conftest.py" or path in EXTRA_SOURCES:
        yield tree
        return
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("test_"):
            yield node


def fixture_overrides() -> dict[str, set[str]]:
    """Setting -> files whose fixtures override it."""
    found: dict[str, set[str]] = {}
    for path in [*sorted((ROOT / "tests").rglob("*.py")), *EXTRA_SOURCES]:
        for code in fixture_code(path):
            for name in overrides_in(code):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def defines_test(reference: str) -> bool:
    path, _, name = reference.partition("::")
    file = ROOT / path
    if not file.is_file():
        return False
    tree = ast.parse(file.read_text())
    return any(isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef) and n.name == name for n in tree.body)


def test_fixtures_override_only_places_or_allow_listed_settings() -> None:
    found = fixture_overrides()
    listing = "\n".join(f"  {name}: {', '.join(sorted(files))}" for name, files in sorted(found.items()))
    print(f"settings the test fixtures override:\n{listing}")
    hidden = {n: f for n, f in found.items() if not PLACES.match(n.replace("*", "X")) and n not in ALLOWED}
    assert not hidden, f"fixtures override defaults without an allow-list entry: {hidden}"


def test_every_allow_listed_override_has_a_reason_a_default_test_and_a_use() -> None:
    found = fixture_overrides()
    for name, (reason, covered_by) in ALLOWED.items():
        assert reason, name
        assert "\n" not in reason, name
        assert defines_test(covered_by), f"{name}: the test of its default, {covered_by}, does not exist"
        assert name in found, f"{name} is allow-listed but no fixture overrides it any more: remove it"


def test_a_planted_override_is_found() -> None:
    planted = ast.parse(
        "def fixture():\n"
        "    load_settings(SynthesizerSettings, worker_lease_seconds=3, store_port=0)\n"
        "    env = {'STORYWIRE_WORKER_MAX_ATTEMPTS': '1', f'STORYWIRE_{n}_PORT': '1'}\n"
        "    monkeypatch.setenv('STORYWIRE_LLM_MAX_ATTEMPTS', '1')\n"
    )
    names = set(overrides_in(planted))
    assert names == {
        "STORYWIRE_WORKER_LEASE_SECONDS", "STORYWIRE_STORE_PORT", "STORYWIRE_WORKER_MAX_ATTEMPTS",
        "STORYWIRE_*_PORT", "STORYWIRE_LLM_MAX_ATTEMPTS",
    }  # fmt: skip
    assert {n for n in names if not PLACES.match(n.replace("*", "X")) and n not in ALLOWED} == {
        "STORYWIRE_WORKER_LEASE_SECONDS", "STORYWIRE_WORKER_MAX_ATTEMPTS", "STORYWIRE_LLM_MAX_ATTEMPTS",
    }  # fmt: skip
