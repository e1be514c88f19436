"""One error family for every hvuaudit command, and the exit codes the CLI maps it to.

Every problem a user can fix (a bad file, an unknown category, an empty store, a folder
that --force may not replace) is raised as a subclass of :class:`HvuError` with a message
that names the offending file or line and a hint that says how to fix it. The CLI prints
``error: <message>`` and ``hint: <hint>`` on stderr and exits with ``exit_code``.
Library errors (DuckDB, OS, torch) are wrapped where they enter. Standard library only.
"""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of every ``hvuaudit`` command (docs/conventions.md)."""

    OK = 0
    UNEXPECTED = 1  # a bug: please report it
    USAGE = 2  # click's own code for bad options
    BAD_INPUT = 3  # a file, value or argument the user gave is wrong
    STORE = 4  # the store or an artefact (checkpoint, eval.json) is missing, damaged, locked or not ours
    CONFLICT = 5  # refused to overwrite or delete something
    DIVERGED = 6  # training diverged (a non-finite loss)
    SYSTEM = 7  # the machine refused: disk full, permission denied, read-only file system
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), after undoing what was half done


class HvuError(Exception):
    """Base class: a message for the user and a hint on how to fix it."""

    exit_code: int = ExitCode.BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class InputError(HvuError):
    """A CSV, option value, folder or argument the user gave is malformed."""

    exit_code = ExitCode.BAD_INPUT


class StoreError(HvuError):
    """The store (or an artefact) cannot be opened, is empty or damaged, or a query against it failed."""

    exit_code = ExitCode.STORE


class ConflictError(HvuError):
    """An output already exists, or a path may not be replaced or deleted."""

    exit_code = ExitCode.CONFLICT


class SystemRefusal(HvuError):
    """The operating system refused a write (disk full, permission, read-only file system)."""

    exit_code = ExitCode.SYSTEM


_SYSTEM_HINTS = {
    errno.ENOSPC: "free some space on that disk (or choose an output on another one) "
    "and run the command again",
    errno.EDQUOT: "you are over your disk quota: free some space and run the command again",
    errno.EACCES: "you may not write there: choose another path, or fix its permissions",
    errno.EPERM: "you may not write there: choose another path, or fix its permissions",
    errno.EROFS: "that file system is read-only: choose an output on another one",
}


def system_refusal(exc: OSError, doing: str) -> SystemRefusal | None:
    """The user-facing error for an OSError that the machine, not a bug, caused (None otherwise)."""
    if exc.errno not in _SYSTEM_HINTS:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    return SystemRefusal(f"{doing}: {exc.strerror or exc}{where}", hint=_SYSTEM_HINTS[exc.errno])


def text_says_disk_full(text: str) -> bool:
    """True when a library's message (DuckDB, torch) reports a full disk without an errno."""
    lowered = text.lower()
    return "no space left" in lowered or "disk full" in lowered or "file write failed" in lowered


class MissingArtifactError(HvuError):
    """A run-folder file (checkpoint, eval.json, features) that a command needs is missing or damaged."""

    exit_code = ExitCode.STORE
