"""Errors of the evaluator: the one family of :mod:`hvucontracts.errors`.

``EvalError`` (exit 3) is a bad input the user can fix: an option, a features or
labels file, a figure path. ``MissingArtifactError`` (exit 4) is a run-folder file
that a command needs and that is missing or damaged. Standard library only.
"""

from __future__ import annotations

from hvucontracts.errors import ExitCode, HvuError, MissingArtifactError


class EvalError(HvuError):
    """A problem the user can fix; ``str()`` says what and how."""

    exit_code = ExitCode.BAD_INPUT


__all__ = ["EvalError", "MissingArtifactError"]
