"""Writing one benchmark script's section into BENCHMARKS.md, leaving the other sections alone."""

from __future__ import annotations

import re
from pathlib import Path


def replace_section(path: Path, title: str, text: str) -> None:
    """Replace the section headed ``title`` (up to the next ``## `` heading), or append it."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _match: text.rstrip("\n") + "\n\n", current, count=1).rstrip("\n") + "\n"
    else:
        updated = current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    path.write_text(updated, encoding="utf-8")
