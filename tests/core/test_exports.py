"""`hvuaudit export mmaction`: mmaction2's HVU lists, checked against the raw CSV files (issue #21)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from tests.conftest import HVU_CATEGORIES, HVU_VAL


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _split(db: Path, out: Path, *args) -> Path:
    result = invoke("split", "--db", db, "--out", out, *args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def own_real_store(real_store, tmp_path_factory) -> Path:
    """A copy of the real store: a split saves its members in it, and real_store is for reading only."""
    db = tmp_path_factory.mktemp("store") / "hvu.duckdb"
    db.write_bytes(real_store.read_bytes())
    return db


@pytest.fixture(scope="module")
def real_export(own_real_store, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    split = _split(own_real_store, root / "si2", "--variant", "2", "--min-videos", "25")
    result = invoke("export", "mmaction", split, "--db", own_real_store)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(root / "si2_mmaction")  # beside the split by default
    return split, root / "si2_mmaction"


def test_the_lists_are_what_mmaction2s_scripts_make_of_the_csv_files(real_export):
    split, out = real_export
    # mmaction2's convention, rebuilt from the two CSV files themselves
    categories: dict[str, list[str]] = {}
    with open(HVU_CATEGORIES, newline="") as fh:
        for row in csv.DictReader(fh):
            categories.setdefault(row["Category"], []).append(row["Tag"])
    for tags in categories.values():
        tags.sort()
    assert json.loads((out / "hvu_tags.json").read_text()) == categories
    expected = {}
    with open(HVU_VAL, newline="") as fh:
        for row in csv.DictReader(fh):
            start, end = (int(float(row[key]) * 10) for key in ("time_start", "time_end"))  # their int(t*10)
            name = f"{row['youtube_id']}_{start:06d}_{end:06d}"
            label: dict[str, list[int]] = {}
            for tag in row["Tags"].split("|"):
                category = next(c for c, tags in categories.items() if tag in tags)
                label.setdefault(category, []).append(categories[category].index(tag))
            expected[f"{name}.mp4"] = label
    # docs/audit.md's example is the validation file's first clip
    first = dict(sorted(expected["gD_G1b0wV5I_001015_001035.mp4"].items()))
    docs = " ".join((Path(__file__).parents[2] / "docs" / "audit.md").read_text().split())
    assert json.dumps(first).replace("{", '"label": {') in docs
    for name in ("train", "select", "val"):
        rows = list(csv.DictReader(open(split / f"{name}.csv", newline="")))
        items = json.loads((out / f"hvu_{name}_video.json").read_text())
        assert len(items) == len(rows) > 0
        for item in items[:: max(1, len(items) // 200)]:  # a sample of each list, in full
            assert item["label"] == {
                c: expected[item["filename"]][c] for c in sorted(expected[item["filename"]])
            }
    record = json.loads((out / "export.json").read_text())
    assert record["sets"] == {
        n: len(json.loads((out / f"hvu_{n}_video.json").read_text())) for n in record["sets"]
    }


def test_a_store_that_did_not_make_the_split_is_refused(real_export, tiny_store, tmp_path):
    split, _ = real_export
    result = invoke("export", "mmaction", split, "--out", tmp_path / "x", "--db", tiny_store)
    assert result.exit_code == 3 and "HVU_Val_V1.0.csv, which this store" in result.output
    assert "pass the --db the split was made from" in result.output and not (tmp_path / "x").exists()


def test_an_export_never_replaces_what_it_did_not_write(own_real_store, real_export, tmp_path):
    real_store = own_real_store
    split, out = real_export
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    refused = invoke("export", "mmaction", split, "--out", mine, "--db", real_store, "--force")
    assert refused.exit_code == 5 and (mine / "notes.txt").read_text() == "my notes"
    onto_split = invoke("export", "mmaction", split, "--out", split, "--db", real_store, "--force")
    assert onto_split.exit_code == 5 and (split / "manifest.json").is_file()
    again = invoke("export", "mmaction", split, "--db", real_store)
    assert again.exit_code == 5 and "--force" in again.output
    (out / "extra.txt").write_text("added by hand")  # an export holding a foreign file is not replaced
    forced = invoke("export", "mmaction", split, "--db", real_store, "--force")
    assert forced.exit_code == 5 and (out / "extra.txt").read_text() == "added by hand"
    (out / "extra.txt").unlink()
    assert invoke("export", "mmaction", split, "--db", real_store, "--force").exit_code == 0
