"""The CLI edge: where library errors become click failures (one line, an exit code).

Commands built with :class:`Command` / :class:`Group` turn a :class:`~occlusion_synth.errors.
UserError` raised anywhere below them into ``Error: <one line>`` on stderr and its exit code,
so library code never imports click.
"""

from __future__ import annotations

from typing import Any

import click

from .errors import UserError


class CliError(click.ClickException):
    """A click failure printed as one ``Error: ...`` line, with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:  # one line, no usage block
        click.echo(f"Error: {self.message}", err=True, file=file)


def as_cli_error(exc: UserError) -> CliError:
    """The click failure that reports ``exc``."""
    return CliError(exc.message, getattr(exc, "exit_code", 2))


class Command(click.Command):
    """A click command that reports :class:`UserError` as one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise as_cli_error(exc) from None


class Group(click.Group):
    """A click group whose subcommands report :class:`UserError` as one line."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise as_cli_error(exc) from None
