"""Errors of the trainer package: one family, each with the exit code the CLI uses.

Mirrors hvuaudit.errors without importing it (the trainer never imports hvuaudit):
3 = bad input (split folder, videos, options), 4 = missing artefact (checkpoint,
eval.json), 5 = refused to overwrite, 6 = training diverged (non-finite loss).
"""

from __future__ import annotations


class TrainerError(Exception):
    """A problem the user can fix; ``str()`` says what and how."""

    exit_code = 3


class MissingArtifactError(TrainerError):
    exit_code = 4


class ConflictError(TrainerError):
    exit_code = 5


class DivergedError(TrainerError):
    exit_code = 6
