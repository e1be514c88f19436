"""The one CLI error handler, shared by ``hvuaudit`` and ``python -m trainer``.

A click group whose ``invoke`` turns every error of the :mod:`hvucontracts.errors`
family into ``error: <message>`` / ``hint: <hint>`` on stderr and its documented exit
code. It also turns the two failures that are nobody's bug into messages rather than
tracebacks: an OSError the machine caused (a full disk, a refused permission: exit 7),
and Ctrl-C (exit 130, one line; every command undoes what it had half done, so the
line can say so). Imports only the standard library and click.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from hvucontracts.errors import ExitCode, InputError, system_refusal
from hvucontracts.files import refuse_overwriting

# The options that name an output file; every other path option of a command is an input.
OUTPUT_PARAMS = ("output", "plot")


def _main_process() -> bool:
    """Under torchrun every process fails alike: only rank 0 prints."""
    return int(os.environ.get("RANK", "0")) == 0


# What the [train] extra brings: a command that finds one of them missing says which extra to install.
TRAIN_EXTRA_MODULES = ("torch", "torchvision", "av", "sklearn")


def missing_extra(exc: ModuleNotFoundError, command: str | None) -> InputError | None:
    """The user-facing error for a command whose body needs a package of the [train] extra."""
    if (exc.name or "").split(".")[0] not in TRAIN_EXTRA_MODULES:
        return None  # a module of ours, or of the core, is missing: a broken install, not a choice
    return InputError(
        f"'{command}' needs the training extra ({exc.name} is not installed)",
        hint="install it with: pip install -e '.[train]'",
    )


class ErrorHandlingGroup(click.Group):
    """A click group that prints user-facing errors instead of tracebacks."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            self._interrupted(ctx)
        except Exception as exc:
            if isinstance(exc, click.ClickException | click.exceptions.Exit | click.exceptions.Abort):
                raise
            if _is_interruption(exc):
                self._interrupted(ctx)
            if isinstance(exc, ModuleNotFoundError):
                exc = missing_extra(exc, ctx.invoked_subcommand or ctx.info_name) or exc
            elif isinstance(exc, OSError) and not hasattr(exc, "exit_code"):
                exc = system_refusal(exc, "the machine refused a write") or exc
            code = getattr(exc, "exit_code", None)
            if code is None:
                raise
            if _main_process():
                click.echo(f"error: {exc}", err=True)
            ctx.exit(int(code))

    @staticmethod
    def _interrupted(ctx: click.Context) -> None:
        if _main_process():
            click.echo("interrupted (Ctrl-C): nothing half-done was kept", err=True)
        sys.stderr.flush()
        ctx.exit(int(ExitCode.INTERRUPTED))


def _is_interruption(exc: BaseException) -> bool:
    """Ctrl-C inside a DuckDB query arrives as its InterruptException, as RuntimeError('Query
    interrupted'), or, when it hit Python code that DuckDB called (the scan of a registered Python
    object), as an error whose message ends in "KeyboardInterrupt" (``... registered as 'x' failed:
    KeyboardInterrupt:``, or a Python traceback's last line)."""
    seen: BaseException | None = exc
    visited: set[int] = set()  # a chain of causes can loop back on itself
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        text = str(seen).strip()
        if (
            type(seen).__name__ == "InterruptException"
            or text == "Query interrupted"
            or re.search(r"\bKeyboardInterrupt:?$", text)
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _paths(value: object) -> list[Path]:
    """The paths a parameter value names: Path values, and text that names an existing file (``sql
    q.sql``)."""
    if isinstance(value, tuple | list):
        return [p for item in value for p in _paths(item)]
    if isinstance(value, Path):
        return [value]
    if isinstance(value, str) and value and "\n" not in value and len(value) < 4096:
        try:
            return [Path(value)] if Path(value).is_file() else []
        except OSError:
            return []
    return []


def protect_outputs(
    command: click.Command, protected: Callable[[dict], Iterable[Path]] | None = None
) -> click.Command:
    """Make ``command`` refuse (exit 5) an ``--output``/``--plot`` that is one of its inputs.

    Its inputs are every other path option or argument, plus what ``protected(params)``
    adds (the store and its ``.wal`` for the audit commands). Groups are walked, so one
    call covers a whole command tree; a command is wrapped once.
    """
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            protect_outputs(sub, protected)
    callback = command.callback
    if callback is None or getattr(callback, "_outputs_protected", False):
        return command

    @functools.wraps(callback)
    def guarded(*args, **kwargs):
        outputs = [Path(kwargs[name]) for name in OUTPUT_PARAMS if kwargs.get(name)]
        if outputs:
            inputs = [p for name, value in kwargs.items() if name not in OUTPUT_PARAMS for p in _paths(value)]
            inputs += list(protected(kwargs)) if protected else []
            for k, output in enumerate(outputs):
                refuse_overwriting(output, inputs + outputs[:k])  # nor one output onto another
        return callback(*args, **kwargs)

    guarded._outputs_protected = True  # type: ignore[attr-defined]
    command.callback = guarded
    return command
