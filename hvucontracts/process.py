"""Worker processes that never outlive the command that started them.

``hvuaudit demo`` and ``hvuaudit synth videos`` render and train in pools of worker
processes. Killed with ``kill -9``, a parent cannot clean up; without this, its workers
would keep running (and writing) as orphans. :func:`die_with_parent` is the pools'
initializer: on Linux it asks the kernel to send the worker SIGKILL when its parent
dies (``PR_SET_PDEATHSIG``); elsewhere it does nothing. Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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
