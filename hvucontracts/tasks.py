"""tasks.json: the roles that NCA recommends and the trainer obeys.

Where it sits: ``hvuaudit nca roles`` (``hvuaudit.nca``) writes it; ``hvuaudit train
--tasks`` (``trainer.config``) reads it to set the sign of each head. Both import
this module, so the format string, the role names and the reader are written once.

A tasks file is a JSON object with ``format`` (:data:`TASKS_FORMAT`), ``rule`` (the
rule in words), ``roles`` (category → ``auxiliary`` or ``adversarial``) and the
evidence behind each role. Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hvucontracts.errors import InputError
from hvucontracts.files import write_atomically

TASKS_FORMAT = "hvuaudit-tasks/1"
ROLES = ("auxiliary", "adversarial")
TRAINED_CATEGORIES = ("scene", "object")  # the categories the trainer has a head for
REWRITE = "rewrite it with `hvuaudit nca roles`"


class TasksFileError(InputError):
    """A tasks.json that is missing, unreadable, of another format or with an unknown role (exit 3)."""


def write_tasks(path: Path | str, document: dict[str, Any]) -> None:
    """Write a tasks document atomically, stamped with :data:`TASKS_FORMAT`."""
    body = {"format": TASKS_FORMAT, **{k: v for k, v in document.items() if k != "format"}}
    text = json.dumps(body, indent=2) + "\n"
    write_atomically(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_roles(path: Path | str) -> dict[str, str]:
    """The roles of the trained categories (scene, object) that the file names."""
    path = Path(path)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise TasksFileError(f"{path}: no such tasks file; write one with `hvuaudit nca roles`") from None
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or not JSON
        raise TasksFileError(f"{path}: not a readable JSON file ({exc}); {REWRITE}") from exc
    if not isinstance(doc, dict) or doc.get("format") != TASKS_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise TasksFileError(f"{path}: format is {found!r}, expected {TASKS_FORMAT!r}; {REWRITE}")
    roles = doc.get("roles")
    if not isinstance(roles, dict):
        raise TasksFileError(f"{path}: has no 'roles' object; {REWRITE}")
    out: dict[str, str] = {}
    for category in TRAINED_CATEGORIES:
        role = roles.get(category)
        if role is None:
            continue
        if role not in ROLES:
            raise TasksFileError(
                f"{path}: roles.{category} is {role!r}; the trainer needs 'auxiliary' or 'adversarial'"
            )
        out[category] = role
    return out
