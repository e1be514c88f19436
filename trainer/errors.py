"""Errors of the trainer package: the one family of :mod:`hvucontracts.errors`, each with its exit code.

The trainer never imports hvuaudit; both share the exit-code table of
:class:`hvucontracts.errors.ExitCode`: 3 = bad input (split folder, videos, options),
4 = missing or damaged artefact (checkpoint, eval.json), 5 = refused to overwrite,
6 = training diverged (non-finite loss), 7 = the machine refused a write (disk full).
A missing artefact and a refused overwrite are the shared classes of :mod:`hvucontracts.errors`,
re-exported here, so that one ``except`` catches them whichever package raised them.
"""

from __future__ import annotations

from hvucontracts.errors import ConflictError, ExitCode, HvuError, MissingArtifactError, SystemRefusal


class TrainerError(HvuError):
    """A problem the user can fix; ``str()`` says what and how."""

    exit_code = ExitCode.BAD_INPUT


class DivergedError(TrainerError):
    exit_code = ExitCode.DIVERGED


class ReplicaMismatchError(TrainerError):
    """The processes of a torchrun run hold different weights: a bug of the trainer, not of the input."""

    exit_code = ExitCode.UNEXPECTED


__all__ = [
    "ConflictError",
    "DivergedError",
    "MissingArtifactError",
    "ReplicaMismatchError",
    "SystemRefusal",
    "TrainerError",
]
