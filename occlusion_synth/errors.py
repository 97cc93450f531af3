"""Errors a user can cause: each ends a command with one clear line and exit code 2."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """A problem with the user's input (missing folder, bad option...). Exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - one line, no traceback
        click.echo(f"Error: {self.format_message()}", err=True, file=file)
