"""A real-terminal smoke test: `hvuaudit tui` under tmux, driven by send-keys, read by capture-pane.

This shows the app works in a terminal (the real driver, the console script, the
--db and --read-only options), not only under Pilot. Skipped when tmux is missing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tui.test_tui import build_store

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Terminal:
    """One tmux session on a private server socket (never the user's own tmux)."""

    def __init__(self, command: str, *, width: int = 120, height: int = 36) -> None:
        self.socket = f"hvuaudit-test-{os.getpid()}-{time.monotonic_ns()}"
        self.name = "tui"
        self._tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        return done.stdout

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def wait_for(self, *texts: str, timeout: float = 20.0) -> str:
        """The pane once it shows every one of ``texts`` (a frame may be captured half-drawn)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{texts!r} did not all appear within {timeout}s; the terminal shows:\n{screen}")

    def wait_gone(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text not in self.screen():
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} is still on screen after {timeout}s:\n{self.screen()}")

    def alive(self) -> bool:
        return (
            subprocess.run(
                [TMUX, "-L", self.socket, "has-session", "-t", self.name], capture_output=True
            ).returncode
            == 0
        )

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True)


def hvuaudit_command(*args: str) -> str:
    script = Path(sys.executable).with_name("hvuaudit")
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "hvuaudit.cli"]
    # keep the pane open after the app exits, so that a crash can be read
    return shlex.join([*launcher, *args]) + "; echo EXITED-$?; sleep 30"


def test_tui_in_a_real_terminal(tmp_path):
    db = build_store(tmp_path)
    terminal = Terminal(
        "env -u COLUMNS -u LINES TERM=xterm-256color "
        f"{hvuaudit_command('tui', '--db', str(db), '--read-only')}"
    )
    try:
        terminal.wait_for("22 clips in 1 source file(s)", "read-only", "HVU_Val_tui.csv")
        terminal.send("2")
        terminal.wait_for("search actions")
        terminal.send("/")
        terminal.send("-l", "viol")
        terminal.send("Enter")
        terminal.wait_for("NCA top scene: concert_hall", "playing_violin")
        terminal.send("3")
        terminal.wait_for("0 of 5 actions have a necessary")
        terminal.send("+")
        terminal.send("p")  # the plot in the table's place (the window is narrower than 160 columns)
        terminal.wait_for("t = 0.25")  # the sweep plot follows the new threshold
        terminal.send("4")
        terminal.wait_for("Annotation is disabled")
        terminal.send("?")  # on the Annotate screen, ? shows the guidelines
        terminal.wait_for("sufficient")
        # a lone ESC is told from the start of an escape sequence by a pause: let it land first
        terminal.send("Escape")
        terminal.wait_gone("sufficient")
        terminal.send("F1")  # help, from any screen
        terminal.wait_for("Read-only mode")
        terminal.send("Escape")
        terminal.wait_gone("Read-only mode")
        terminal.send("C-q")
        screen = terminal.wait_for("EXITED-")
        assert "EXITED-0" in screen
        assert "Traceback" not in screen
    finally:
        terminal.close()


def test_tui_refuses_a_pipe(tmp_path):
    db = build_store(tmp_path)
    script = Path(sys.executable).with_name("hvuaudit")
    if not script.exists():
        pytest.skip("the hvuaudit console script is not installed in this environment")
    done = subprocess.run(
        [str(script), "tui", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 3
    assert "needs a terminal" in done.stderr and done.stdout == ""
