"""Everything the README names exists: ``storywire`` commands and their options, ``python -m`` entry
points, ``make`` targets and ``STORYWIRE_*`` settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from cli.main import app
from devtools.settings_doc import rows

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CODE = re.compile(r"```[a-z]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)


def code_spans(text: str) -> list[str]:
    """The README's code: fenced blocks line by line, and inline code."""
    spans: list[str] = []
    for block, inline in CODE.findall(text):
        spans += block.splitlines() if block else [inline]
    return spans


def storywire_lines(text: str) -> list[tuple[list[str], list[str]]]:
    """(command path, options) of every ``storywire ...`` in the README's code; placeholders skipped."""
    found: list[tuple[list[str], list[str]]] = []
    for span in code_spans(text):
        if found and re.match(r"\s+\[--", span):  # a usage line continued on the next line
            found[-1][1].extend(re.findall(r"(--[a-z][a-z-]*)", span))
            continue
        for match in re.finditer(r"(?:^|[\s;(])storywire((?: [a-z][a-z-]*)+)([^#]*)", span):
            found.append((match.group(1).split(), re.findall(r"(--[a-z][a-z-]*)", match.group(2))))
    return found


def resolve(path: list[str]) -> Any:
    """The click command a README command path names (a group's subcommand too); None when unknown."""
    command: Any = typer.main.get_command(app)
    for word in path:
        commands = getattr(command, "commands", None)
        if commands is None:
            break  # a leaf command: the rest are its arguments
        if word not in commands:
            return None
        command = commands[word]
    return command


def option_names(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}


def test_every_storywire_command_and_option_the_readme_names_exists() -> None:
    named = storywire_lines(README)
    commands = {" ".join(path[:2]) for path, _ in named}
    assert {"run", "watch", "cancel", "jobs", "stories", "show", "cache stats"} <= commands, commands
    for path, options in named:
        command = resolve(path)
        assert command is not None, f"README names `storywire {' '.join(path)}`, which does not exist"
        missing = set(options) - option_names(command)
        assert not missing, f"`storywire {' '.join(path)}` has no {sorted(missing)}"


def test_the_checks_fail_on_names_that_do_not_exist() -> None:
    bogus = (
        "```sh\nstorywire run URL --no-such-option\nstorywire frobnicate JOB\n```\n`storywire cache purge`"
    )
    named = storywire_lines(bogus)
    assert [path for path, _ in named] == [["run"], ["frobnicate"], ["cache", "purge"]]
    assert "--no-such-option" not in option_names(resolve(["run"]))
    assert resolve(["frobnicate"]) is None
    assert resolve(["cache", "purge"]) is None
    assert not _runnable("services.nothing")
    assert "STORYWIRE_NO_SUCH_SETTING" not in _known_settings()


def _runnable(module: str) -> bool:
    """``python -m module`` runs something: a package with __main__.py or a module with a main guard."""
    path = ROOT.joinpath(*module.split("."))
    if (path / "__main__.py").is_file():
        return True
    source = path.with_suffix(".py")
    return source.is_file() and 'if __name__ == "__main__"' in source.read_text()


def test_every_module_entry_point_the_readme_names_runs() -> None:
    modules = set(re.findall(r"python -m ([a-z_][\w.]*)", README))
    expected = {"services.store", "services.fetcher", "services.synthesizer", "devtools.corpus.server"}
    assert expected | {"devtools.llmsim", "devtools.stack"} <= modules, modules
    for module in sorted(modules):
        assert _runnable(module), f"README names `python -m {module}`, which has no entry point"


def _known_settings() -> set[str]:
    """Settings of the services and the CLI, and the variables the development tools read."""
    tools = " ".join(p.read_text() for p in (ROOT / "devtools").rglob("*.py"))
    tools += (ROOT / "Makefile").read_text()
    read_by_tools = set(re.findall(r"[\"'$({]+(STORYWIRE_[A-Z0-9_]+)", tools))
    return set(rows()) | read_by_tools


def test_every_setting_the_readme_names_exists() -> None:
    named = set(re.findall(r"STORYWIRE_[A-Z0-9_]*[A-Z0-9]", README))
    assert {"STORYWIRE_SYNTHESIZER_ADDRESS", "STORYWIRE_REDIS_URL"} <= named
    unknown = named - _known_settings()
    assert not unknown, f"README names settings that nothing reads: {sorted(unknown)}"


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))
    named = {t for span in code_spans(README) for t in re.findall(r"\bmake ([a-z][\w-]*)", span)}
    assert {"run", "test", "stack-up"} <= named
    assert not named - targets, f"README names make targets that do not exist: {sorted(named - targets)}"
