"""tasks.json: the roles that NCA recommends and the trainer obeys.

Where it sits: ``hvuaudit nca roles`` (``hvuaudit.nca``) writes it; ``hvuaudit train
--tasks`` (``trainer.config``) reads it to set the sign of each head. Both import
this module, so the format string, the role names and the reader are written once.

A tasks file is a JSON object with ``format`` (:data:`TASKS_FORMAT`), ``rule`` (the
rule in words), ``roles`` (category → ``auxiliary``, ``adversarial`` or, from version 2,
``undecided``), ``warnings`` and the evidence behind each role (docs/formats.md). Version 1
files (a single-threshold rule, no band) are still read. Standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvucontracts.errors import InputError
from hvucontracts.files import write_atomically

TASKS_FORMAT = "hvuaudit-tasks/2"
READABLE_FORMATS = ("hvuaudit-tasks/1", TASKS_FORMAT)
ROLES = ("auxiliary", "adversarial")
UNDECIDED = "undecided"  # version 2: the roles rule found no band where the verdict holds
TRAINED_CATEGORIES = ("scene", "object")  # the categories the trainer has a head for
REWRITE = "rewrite it with `hvuaudit nca roles`"


class TasksFileError(InputError):
    """A tasks.json that is missing, unreadable, of another format or with an unknown role (exit 3)."""


def write_tasks(path: Path | str, document: dict[str, Any]) -> None:
    """Write a tasks document atomically, stamped with :data:`TASKS_FORMAT`."""
    body = {"format": TASKS_FORMAT, **{k: v for k, v in document.items() if k != "format"}}
    text = json.dumps(body, indent=2) + "\n"
    write_atomically(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


@dataclass(frozen=True)
class TasksFile:
    """What the trainer takes from a tasks file: the trained categories' roles and the file's warnings."""

    roles: dict[str, str]  # category → auxiliary, adversarial or undecided
    warnings: tuple[str, ...]


def read_tasks(path: Path | str) -> TasksFile:
    """Read a tasks file of any readable format; refuse a role the format does not allow."""
    path = Path(path)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise TasksFileError(f"{path}: no such tasks file; write one with `hvuaudit nca roles`") from None
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or not JSON
        raise TasksFileError(f"{path}: not a readable JSON file ({exc}); {REWRITE}") from exc
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        readable = " or ".join(map(repr, READABLE_FORMATS))
        raise TasksFileError(f"{path}: format is {found!r}, expected {readable}; {REWRITE}")
    roles = doc.get("roles")
    if not isinstance(roles, dict):
        raise TasksFileError(f"{path}: has no 'roles' object; {REWRITE}")
    allowed = ROLES if doc["format"] == READABLE_FORMATS[0] else (*ROLES, UNDECIDED)
    out: dict[str, str] = {}
    for category in TRAINED_CATEGORIES:
        role = roles.get(category)
        if role is None:
            continue
        if role not in allowed:
            raise TasksFileError(
                f"{path}: roles.{category} is {role!r}; a {doc['format']} file allows "
                + " or ".join(map(repr, allowed))
            )
        out[category] = role
    warnings = doc.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise TasksFileError(f"{path}: 'warnings' must be a list of strings; {REWRITE}")
    return TasksFile(roles=out, warnings=tuple(warnings))
