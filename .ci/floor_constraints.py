"""Print a pip constraints file that pins every core dependency of pyproject.toml to its declared floor.

`make floors` installs the package with it (`pip install -c floors.txt -e .`, then the `dev`
extra), so the core runs against the lowest versions that pyproject.toml promises work. The
test tools of the `dev` extra stay unpinned: the floors are a promise about the runtime.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def floors() -> dict[str, str]:
    """Core dependency -> its declared floor, from pyproject.toml."""
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    found = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][^,;\s]*)\s*(?:,.*)?", requirement)
        if match is None:
            sys.exit(f"pyproject.toml: {requirement!r} has no '>=' floor; every core dependency needs one")
        found[match.group(1).split("[")[0]] = match.group(2)
    return found


def _release(version: str) -> tuple[int, ...]:
    """'1.2' and '1.2.0' are the same release (the floors are plain numeric versions)."""
    parts = [int(p) for p in version.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


if __name__ == "__main__":
    if sys.argv[1:] == ["--verify"]:  # run inside the floors environment: it holds exactly the floors
        from importlib.metadata import version

        wrong = {n: version(n) for n, floor in floors().items() if _release(version(n)) != _release(floor)}
        if wrong:
            sys.exit(f"the floors environment does not hold the floors: {wrong}")
        print("floors installed: " + ", ".join(f"{n} {v}" for n, v in floors().items()))
    elif sys.argv[1:] == ["--import-core"]:  # with `pip install .` alone: the core and the TUI load
        import importlib

        root = Path(__file__).resolve().parents[1]
        for package in ("hvucontracts", "hvuaudit"):
            for path in sorted((root / package).rglob("*.py")):
                parts = path.relative_to(root).with_suffix("").parts
                importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        print("every module of hvucontracts and hvuaudit imports without the extras")
    else:
        print("\n".join(f"{name}=={floor}" for name, floor in floors().items()))
