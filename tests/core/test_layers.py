"""The layers of docs/development.md, checked by importing every module of each layer in a fresh process.

import-linter (``make lint``) checks the same table statically; this test checks what
Python really loads, lazy imports and all, so that a docstring saying "never imports
torch" fails here the day it becomes false.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def modules_of(package: str, *, skip: tuple[str, ...] = ()) -> list[str]:
    """Every module of ``package`` and its subpackages, found on disk: a new module is covered at once."""
    root = ROOT / package.replace(".", "/")
    found = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(m for m in found if not any(m == s or m.startswith(s + ".") for s in skip))


def _contract(name_start: str) -> dict:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_start))


def contract_sources(name_start: str) -> list[str]:
    """The source modules of the import-linter contract whose name starts with ``name_start``."""
    return sorted(_contract(name_start)["source_modules"])


def contract_forbidden(name_start: str) -> set[str]:
    return set(_contract(name_start)["forbidden_modules"])


LAYERS = {
    # what each layer may not load is what its import-linter contract forbids: one list, in pyproject.toml
    "contracts": (modules_of("hvucontracts"), contract_forbidden("The contracts")),
    "core": (modules_of("hvuaudit", skip=("hvuaudit.tui",)), contract_forbidden("The audit core")),
    "tui": (modules_of("hvuaudit.tui"), {"torch", "torchvision", "trainer", "hvueval", "hvudemo"}),
    # the torch-free modules are those of the import-linter contracts: one list, in pyproject.toml
    "trainer without torch": (
        [m for m in contract_sources("The trainer's config") if m != "trainer.videos"],
        {"torch", "torchvision", "hvuaudit", "hvueval", "hvudemo"},
    ),
    "evaluator without torch": (
        contract_sources("Curves, t-SNE"),
        {"torch", "torchvision", "hvuaudit", "hvudemo"},
    ),
    "demo parent": (modules_of("hvudemo"), {"torch", "trainer", "sklearn"}),
}
INSTALLED = {m.name for m in pkgutil.iter_modules()}
if "av" in INSTALLED:  # the [train] extra: finding and probing clip files needs PyAV, not torch
    LAYERS["trainer without torch"][0].append("trainer.videos")
if "torch" in INSTALLED:
    LAYERS["trainer"] = (modules_of("trainer"), {"hvuaudit", "hvueval", "hvudemo"})
    LAYERS["evaluator"] = (modules_of("hvueval"), {"hvuaudit", "hvudemo"})


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_layer_loads_nothing_it_must_not(layer):
    modules, forbidden = LAYERS[layer]
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"bad = {sorted(forbidden)!r}\n"
        "print(sorted(b for b in bad if any(m == b or m.startswith(b + '.') for m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{layer} loaded {done.stdout.strip()}"


def test_the_layer_lists_name_real_modules():
    """A module renamed away from a hand-written list above would leave it unchecked."""
    for layer, (modules, _) in LAYERS.items():
        for module in modules:
            assert (ROOT / (module.replace(".", "/") + ".py")).is_file() or (
                ROOT / module.replace(".", "/") / "__init__.py"
            ).is_file(), (layer, module)
    assert "hvuaudit.cli" in LAYERS["core"][0] and "hvuaudit.tui.app" in LAYERS["tui"][0]
    assert "hvuaudit.tui.screens.nca" in LAYERS["tui"][0] and "hvuaudit.tui.widgets.plots" in LAYERS["tui"][0]


def test_the_import_linter_contract_lists_every_core_module():
    """The static contract in pyproject.toml names the core modules one by one: a new one must join it."""
    assert contract_sources("The audit core") == [m for m in LAYERS["core"][0] if m != "hvuaudit"]
