"""The layers of docs/development.md, checked by importing every module of each layer in a fresh process.

import-linter (``make lint``) checks the same table statically; this test checks what
Python really loads, lazy imports and all, so that a docstring saying "never imports
torch" fails here the day it becomes false.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def modules_of(package: str, *, skip: tuple[str, ...] = ()) -> list[str]:
    """Every module of ``package`` (found on disk, so a new module is covered the day it is added)."""
    path = ROOT / package.replace(".", "/")
    found = [package] + [f"{package}.{m.name}" for m in pkgutil.walk_packages([str(path)], prefix="")]
    return sorted(
        m
        for m in found
        if not any(m == s or m.startswith(s + ".") for s in skip) and not m.endswith("__main__")
    )


LAYERS = {
    "contracts": (
        modules_of("hvucontracts"),
        {
            "duckdb",
            "polars",
            "numpy",
            "torch",
            "textual",
            "rich",
            "hvuaudit",
            "trainer",
            "hvueval",
            "hvudemo",
        },
    ),
    "core": (
        modules_of("hvuaudit", skip=("hvuaudit.tui",)),
        {"torch", "torchvision", "av", "textual", "trainer", "hvueval", "hvudemo"},
    ),
    "tui": (modules_of("hvuaudit.tui"), {"torch", "torchvision", "trainer", "hvueval", "hvudemo"}),
    "trainer without torch": (
        ["trainer.backbones", "trainer.cli", "trainer.config", "trainer.errors"],
        {"torch", "torchvision", "hvuaudit", "hvueval", "hvudemo"},
    ),
    "evaluator without torch": (
        [
            "hvueval.cli",
            "hvueval.curves",
            "hvueval.dcorr",
            "hvueval.errors",
            "hvueval.figures",
            "hvueval.plotting",
            "hvueval.report",
            "hvueval.tsne",
        ],
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
        f"print(sorted(set({sorted(forbidden)!r}) & {{m.split('.')[0] for m in sys.modules}}))"
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


def test_the_import_linter_contract_lists_every_core_module():
    """The static contract in pyproject.toml names the core modules one by one: a new one must join it."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    core = next(c for c in contracts if c["name"].startswith("The audit core"))
    assert sorted(core["source_modules"]) == [m for m in LAYERS["core"][0] if m != "hvuaudit"]
