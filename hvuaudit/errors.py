"""One error family for the audit core, and the exit codes the CLI maps it to.

Every problem a user can fix (a bad file, an unknown category, an empty store)
is raised as a subclass of :class:`HvuauditError` carrying a message that names
the offending file/line and a hint that says how to fix it. The CLI prints
``error: <message>`` and ``hint: <hint>`` on stderr and exits with ``exit_code``.
Library errors (DuckDB, OS) are wrapped where they enter the core.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of every ``hvuaudit`` command."""

    OK = 0
    UNEXPECTED = 1  # a bug: please report it
    USAGE = 2  # click's own code for bad options
    BAD_INPUT = 3  # a file, value or argument the user gave is wrong
    STORE = 4  # the DuckDB store is missing, empty, locked or not a DuckDB file
    CONFLICT = 5  # refused to overwrite something (use --force)


class HvuauditError(Exception):
    """Base class: a message for the user and a hint on how to fix it."""

    exit_code: int = ExitCode.BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class InputError(HvuauditError):
    """A CSV, option value or argument is malformed."""

    exit_code = ExitCode.BAD_INPUT


class StoreError(HvuauditError):
    """The store cannot be opened, is empty, or a query against it failed."""

    exit_code = ExitCode.STORE


class ConflictError(HvuauditError):
    """An output already exists and --force was not given."""

    exit_code = ExitCode.CONFLICT
