"""Shared fixtures: the committed tiny fixture store and the real HVU validation store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hvuaudit.ingest import ingest

FIXTURES = Path(__file__).parent / "fixtures"
HVU_DIR = Path(
    os.environ.get("HVUAUDIT_HVU_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hvu")
)
HVU_VAL = HVU_DIR / "HVU_Val_V1.0.csv"
HVU_CATEGORIES = HVU_DIR / "HVU_Tags_Categories_V1.0.csv"


@pytest.fixture(autouse=True)
def _no_ambient_store(monkeypatch):
    """Tests never touch a store named by the developer's environment."""
    monkeypatch.delenv("HVUAUDIT_DB", raising=False)
    monkeypatch.delenv("HVUAUDIT_VIDEOS", raising=False)


@pytest.fixture(scope="session")
def _tiny_store_master(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("tiny") / "tiny.duckdb"
    ingest([FIXTURES / "HVU_Val_tiny.csv"], FIXTURES / "categories.csv", db=db)
    return db


@pytest.fixture
def tiny_store(_tiny_store_master, tmp_path) -> Path:
    """A fresh copy of the 12-clip hand-built store (safe to write to)."""
    db = tmp_path / "tiny.duckdb"
    shutil.copy(_tiny_store_master, db)
    return db


@pytest.fixture(scope="session")
def real_store(tmp_path_factory) -> Path:
    """The real HVU v1.0 validation annotations, ingested once per session (read-only use)."""
    if not HVU_VAL.is_file():
        pytest.skip(f"real HVU data not found in {HVU_DIR} (set HVUAUDIT_HVU_DIR)")
    db = tmp_path_factory.mktemp("real") / "hvu.duckdb"
    ingest([HVU_VAL], HVU_CATEGORIES, db=db)
    return db


def pytest_terminal_summary(terminalreporter) -> None:
    """Say which tests were left out because the [train] extra is not installed (tests/*/conftest.py)."""
    import importlib.util

    missing = [name for name in ("torch", "av", "sklearn") if importlib.util.find_spec(name) is None]
    if missing:
        terminalreporter.write_line(
            f"not installed: {', '.join(missing)} (the [train] extra), so tests/trainer, "
            "tests/evaluator/test_figures.py and tests/demo/test_demo.py were not collected"
        )


def pytest_collection_modifyitems(config, items) -> None:
    """A test that uses the real HVU store is marked real_data (`-m "not real_data"` leaves them out).

    The tests marked slow run first (in their order), so that on several workers (pytest-xdist) the long
    ones start early and the short ones fill the end, instead of one worker finishing a demo alone.
    """
    for item in items:
        if "real_store" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_data)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the order within each part
