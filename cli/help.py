"""Help text in the usual Unix style: ``run [OPTIONS] URL...`` and ``--store HOST:PORT``.

Typer labels every parameter with its Python type (``<list[str]>``, ``<bool>`` on flags) and wraps
required arguments in braces (``{urls}...``) with no option to turn that off, so the commands and groups
of the CLI use these classes, which show a parameter's metavar (or click's type name) instead.
"""

from __future__ import annotations

from typing import Any

from typer import _click as click  # typer 0.29 builds on its own copy of click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _Argument(TyperArgument):
    def _name(self) -> str:
        return self.metavar or (self.name or "ARG").upper()

    def _rich_display_name(self) -> str:
        return self._name() + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        name = self._rich_display_name()
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None


class _Option(TyperOption):
    def display_type_rich(self, ctx: click.Context) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or self.bare_type().upper()


def _plain(params: list[click.Parameter]) -> list[click.Parameter]:
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option
    return params


class _PlainParams(click.Command):
    """Plain metavars on a command's parameters, the --help option included (it is made late)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain(self.params)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _plain(super().get_params(ctx))


class Command(_PlainParams, TyperCommand):
    """For ``app.command(cls=Command)``."""


class Group(_PlainParams, TyperGroup):
    """For ``typer.Typer(cls=Group)``."""
