"""Errors a user can cause, free of any command-line library.

Library code raises :class:`UserError`; only the CLI layer (:mod:`occlusion_synth.cli_support`)
turns it into one ``Error: ...`` line and exit code 2. A diverged training run or an
interrupted build are not user errors and carry exit codes of their own.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (missing folder, bad option...): exit code 2."""

    exit_code = 2

    def __init__(self, message: str = "", *args: object) -> None:
        # ``message=`` as a keyword too: torch re-raises worker errors as ``cls(message=...)``
        super().__init__(message, *args)

    @property
    def message(self) -> str:
        """The message, as raised."""
        return str(self.args[0]) if self.args else ""
