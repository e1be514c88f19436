"""``hvuaudit tui --serve``: the TUI in a web browser, through textual-serve (the ``serve`` extra).

Where it sits: beside :mod:`hvuaudit.tui.app`, called by the CLI. textual-serve starts one
``hvuaudit tui`` process per browser tab and relays its screen over a websocket; this module
checks the address first (the port free, a warning when the host is not this machine's loopback,
since the page gives full access to the store) and builds the command. Never imports torch, the
trainer, the evaluator or the demo; textual-serve is imported only when serving.
"""

from __future__ import annotations

import errno
import shlex
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from hvuaudit.errors import InputError
from hvuaudit.videos.frames import VideoSource

LOOPBACK = ("localhost", "127.0.0.1", "::1")
WILDCARD = ("0.0.0.0", "::")  # every address of the machine
DEFAULT_PORT = 8000


def check_address(host: str, port: int, warn: Callable[[str], None]) -> None:
    """Refuse (exit 3) a port that cannot be bound; warn when the page would be reachable from elsewhere."""
    if not 1 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port (1-65535)")
    if host.lower() not in LOOPBACK:
        warn(
            f"warning: --host {host} serves the TUI, and the store behind it, to anyone who can reach this "
            "machine on that address; textual-serve has no login. Keep the default (localhost) unless "
            "the network is yours"
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: not an address of this machine ({exc})") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds it
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InputError(
                    f"--host {host} is not an address of this machine",
                    hint="give one of its addresses, or localhost",
                ) from exc
            raise InputError(
                f"--port {port} on {host} cannot be used: {exc.strerror or exc}",
                hint="pick another --port (1024-65535)",
            ) from exc


def public_url(host: str, port: int) -> str:
    """The address the page gives the browser for its websocket and files: the host as a browser writes it
    (an IPv6 address in brackets), and this machine's name for a wildcard address."""
    if host in WILDCARD:
        host = socket.getfqdn()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def tui_command(db: Path, *, read_only: bool, videos: VideoSource | None = None) -> str:
    """The shell command textual-serve runs per browser tab: this Python's ``hvuaudit tui``."""
    args = [sys.executable, "-c", "from hvuaudit.cli import main; main()", "tui", "--db", str(db)]
    if read_only:
        args.append("--read-only")
    if videos is not None and videos.folder is not None:
        args += ["--videos", str(videos.folder.resolve())]
    if videos is not None and videos.template is not None:
        args += ["--name-template", videos.template]
    return shlex.join(args)


def serve(
    db: Path,
    *,
    read_only: bool,
    host: str,
    port: int,
    warn: Callable[[str], None],
    videos: VideoSource | None = None,
) -> None:
    """Serve the TUI at http://HOST:PORT until Ctrl+C."""
    try:
        from textual_serve.server import Server
    except ImportError as exc:
        raise InputError(
            f"hvuaudit tui --serve needs textual-serve, which is not installed ({exc})",
            hint="pip install 'hvuaudit[serve]' (or pip install textual-serve)",
        ) from exc
    check_address(host, port, warn)
    url = public_url(host, port)
    warn(f"serving the TUI of {db} at {url} (Ctrl+C stops it)")
    Server(
        tui_command(db, read_only=read_only, videos=videos),
        host=host,
        port=port,
        title="hvuaudit",
        public_url=url,
    ).serve()
