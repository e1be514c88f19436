"""Worker processes that never outlive the command that started them.

``hvuaudit demo`` and ``hvuaudit synth videos`` render and train in pools of worker
processes. Killed with ``kill -9``, a parent cannot clean up; without this, its workers
would keep running (and writing) as orphans. :func:`die_with_parent` is the pools'
initializer: on Linux it asks the kernel to send the worker SIGKILL when its parent
dies (``PR_SET_PDEATHSIG``); elsewhere it does nothing.

:func:`ctrl_c_held_after_commit` keeps a Ctrl-C that comes once a commit has started from
turning a finished write into a reported failure. Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Make this process end when its parent ends (Linux); call it first thing in a worker."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the call: nobody is left to signal us
        os._exit(1)


class _CommitGuard:
    """Ctrl-C after a commit has started: too late to undo, so it must not be reported as undone."""

    def __init__(self) -> None:
        self.active = False
        self.armed = False
        self.pressed = False


_GUARD = _CommitGuard()


@contextlib.contextmanager
def ctrl_c_held_after_commit() -> Iterator[_CommitGuard]:
    """Within the block, Ctrl-C works as usual until :func:`commit_starting`; from then on it is held.

    A command wraps its whole write in this (``ingest``). Once the COMMIT has begun, the work
    is in the store (or the commit fails by itself), and closing the store still has to run: a
    KeyboardInterrupt there would make the CLI say "nothing half-done was kept" about data it
    kept. So a Ctrl-C from then on is only recorded (``guard.pressed``) and the command ends
    normally and says so. Main thread only; elsewhere the block does nothing.
    """
    if threading.current_thread() is not threading.main_thread() or _GUARD.active:
        yield _GUARD
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_ctrl_c(signum: int, frame: FrameType | None) -> None:
        if _GUARD.armed:
            _GUARD.pressed = True
            return
        if previous == signal.SIG_IGN:  # a process started with Ctrl-C ignored keeps ignoring it
            return
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    _GUARD.active, _GUARD.armed, _GUARD.pressed = True, False, False
    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield _GUARD
    finally:
        signal.signal(signal.SIGINT, previous)
        _GUARD.active = _GUARD.armed = False


def commit_starting() -> None:
    """Called just before COMMIT: inside :func:`ctrl_c_held_after_commit`, Ctrl-C is held from now on."""
    if _GUARD.active:
        _GUARD.armed = True
