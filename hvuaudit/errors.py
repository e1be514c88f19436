"""The audit core's errors: the one family of :mod:`hvucontracts.errors`, under the names the core uses.

Every problem a user can fix is raised as a subclass of :class:`HvuauditError` with a
message that names the offending file/line and a hint that says how to fix it; the CLI
prints ``error: <message>`` and ``hint: <hint>`` on stderr and exits with ``exit_code``
(the table is :class:`ExitCode`). Library errors (DuckDB, OS) are wrapped where they
enter the core.
"""

from __future__ import annotations

from hvucontracts.errors import ConflictError, ExitCode, InputError, StoreError, SystemRefusal
from hvucontracts.errors import HvuError as HvuauditError

__all__ = ["ConflictError", "ExitCode", "HvuauditError", "InputError", "StoreError", "SystemRefusal"]
