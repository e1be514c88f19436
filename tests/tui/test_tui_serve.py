"""`hvuaudit tui --serve`: the TUI in a browser through textual-serve (issue #21).

The server is started for real on a free localhost port; the test fetches the page, then opens the
websocket a browser tab opens and reads the app's first screen from it (the app used to refuse to
start there, its output being a pipe).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli

pytest.importorskip("textual_serve", reason="textual-serve is not installed (the serve extra)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


async def _first_screen(port: int, seconds: float = 40.0) -> bytes:
    import aiohttp  # textual-serve's own dependency

    received = b""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://localhost:{port}/ws?width=120&height=36") as ws:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and b"Clips per subset" not in received:
                try:
                    message = await ws.receive(timeout=2)
                except TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.BINARY:
                    received += message.data
                elif message.type == aiohttp.WSMsgType.TEXT:
                    received += message.data.encode()
                else:
                    break
    return received


def test_the_served_tui_answers_on_localhost_and_draws_its_first_screen(tiny_store):
    port = _free_port()
    command = [sys.executable, "-c", "from hvuaudit.cli import main; main()", "tui", "--serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--db", str(tiny_store)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    try:
        page = None
        for _ in range(80):  # the server needs a moment to listen
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/", timeout=2) as response:
                    page = (response.status, response.read().decode())
                    break
            except OSError:
                time.sleep(0.25)
        assert page is not None and page[0] == 200 and "textual" in page[1]
        screen = asyncio.run(_first_screen(port))
        # the overview's own content (not only the tab bar, which a store-error dialog also shows)
        assert b"Clips per subset" in screen and b"needs a terminal" not in screen
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_port_in_use_is_refused_and_another_host_is_warned_about(tiny_store):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["tui", "--serve", "--host", "0.0.0.0", "--port", str(port), "--db", str(tiny_store)]
        )
    assert result.exit_code == 3 and f"--port {port} on 0.0.0.0 cannot be used" in result.output
    assert (
        "warning: --host 0.0.0.0 serves the TUI" in result.output and "pick another --port" in result.output
    )


def test_serving_without_textual_serve_says_how_to_install_it(tiny_store, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_serve(name, *args, **kwargs):
        if name.startswith("textual_serve"):
            raise ModuleNotFoundError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_serve)
    result = CliRunner().invoke(cli, ["tui", "--serve", "--port", str(_free_port()), "--db", str(tiny_store)])
    assert result.exit_code == 3 and "pip install 'hvuaudit[serve]'" in result.output


def test_a_missing_store_stops_before_serving(tmp_path):
    result = CliRunner().invoke(
        cli, ["tui", "--serve", "--port", str(_free_port()), "--db", str(tmp_path / "none.duckdb")]
    )
    assert result.exit_code == 4 and "does not exist" in result.output
    assert not Path(tmp_path / "none.duckdb").exists()


def test_the_page_addresses_a_browser_can_use():
    from hvuaudit.tui.serve import public_url

    assert public_url("localhost", 8000) == "http://localhost:8000"
    assert public_url("::1", 8001) == "http://[::1]:8001"  # IPv6 in brackets, as a URL writes it
    assert public_url("0.0.0.0", 8002) == f"http://{socket.getfqdn()}:8002"  # not the wildcard itself


def test_a_duckdb_file_that_is_not_a_store_is_refused_before_serving(tmp_path):
    import duckdb

    foreign = tmp_path / "foreign.duckdb"
    duckdb.connect(str(foreign)).execute("CREATE TABLE t (x INT)").close()
    result = CliRunner().invoke(cli, ["tui", "--serve", "--port", str(_free_port()), "--db", str(foreign)])
    assert result.exit_code == 4 and "not an hvuaudit store" in result.output
