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


# --------------------------------------------------------------------------- FiftyOne
def _kind_of(value) -> str:
    """The FiftyOne field (string form of sample_fields) that a JSON value of a sample needs."""
    if isinstance(value, dict):
        return f"fiftyone.core.fields.EmbeddedDocumentField(fiftyone.core.labels.{value['_cls']})"
    if isinstance(value, bool):
        return "fiftyone.core.fields.BooleanField"
    if isinstance(value, float):
        return "fiftyone.core.fields.FloatField"
    if isinstance(value, list):
        return "fiftyone.core.fields.ListField(fiftyone.core.fields.FloatField)"
    return "fiftyone.core.fields.StringField"


@pytest.fixture
def tiny_split(tiny_store, tmp_path) -> Path:
    options = ("--variant", "2", "--min-videos", "1", "--select-fraction", "0", "--val-fraction", "0.5")
    return _split(tiny_store, tmp_path / "si2", *options, "--videos", tmp_path / "videos")


def test_the_fiftyone_samples_hold_the_split_and_declare_every_field(tiny_store, tiny_split, tmp_path):
    import numpy as np

    rows = {name: list(csv.DictReader(open(tiny_split / f"{name}.csv"))) for name in ("train", "val")}
    val_ids = [row["clip_id"] for row in rows["val"]]
    run = tmp_path / "run"  # a run's features.npz, as `hvuaudit eval` writes it
    run.mkdir()
    labels = json.loads((tiny_split / "labels.json").read_text())
    preds = np.arange(len(val_ids)) % len(labels["action"])
    arrays = {"val_clip_id": np.array(val_ids), "val_pred": preds, "val_features": np.eye(len(val_ids), 3)}
    np.savez(run / "features.npz", sets=np.array(["val"]), action_names=np.array(labels["action"]), **arrays)
    result = invoke("export", "fiftyone", tiny_split, "--run", run, "--db", tiny_store)
    assert result.exit_code == 0, result.output
    out = Path(result.stdout.strip())
    document = json.loads((out / "samples.json").read_text())
    assert document["media_type"] == "video"
    samples = {s["clip_id"]: s for s in document["samples"]}
    assert len(samples) == sum(len(r) for r in rows.values())
    for side, side_rows in rows.items():
        for row in side_rows:
            sample = samples[row["clip_id"]]
            start, end = (int(float(row[key]) * 10) for key in ("time_start", "time_end"))
            assert sample["filepath"] == str(
                tmp_path / "videos" / f"{row['youtube_id']}_{start:06d}_{end:06d}.mp4"
            )
            assert sample["tags"] == [side] and sample["primary_action"]["label"] == row["action"]
            assert [c["label"] for c in sample["scenes"]["classifications"]] == row["scenes"].split("|")
            assert row["action"] in [c["label"] for c in sample["actions"]["classifications"]]
    for clip, pred, feature in zip(val_ids, preds, np.eye(len(val_ids), 3), strict=True):
        assert samples[clip]["prediction"]["label"] == labels["action"][pred]
        assert samples[clip]["correct"] == (
            labels["action"][pred] == samples[clip]["primary_action"]["label"]
        )
        assert samples[clip]["features"] == feature.tolist()
    own = {"filepath", "tags"}  # FiftyOne's own fields; every other one is declared, with its kind
    for sample in document["samples"]:
        for name, value in sample.items():
            if name not in own:
                assert document["sample_fields"][name] == _kind_of(value), name


def test_fiftyone_parses_every_sample_as_declared(tiny_store, tiny_split):
    """With FiftyOne installed, its own parsers read the samples (FiftyOne needs a database for a Dataset,
    so this checks what Dataset.from_dict does to each sample: Sample.from_dict, and the declared fields)."""
    foo = pytest.importorskip(
        "fiftyone.core.odm.utils", reason="FiftyOne is not installed (not a dependency)"
    )
    import fiftyone.core.sample as fos

    result = invoke("export", "fiftyone", tiny_split, "--db", tiny_store)
    assert result.exit_code == 0, result.output
    document = json.loads((Path(result.stdout.strip()) / "samples.json").read_text())
    schema = {name: foo.get_field_kwargs(text) for name, text in document["sample_fields"].items()}
    for sd in document["samples"]:
        sample = fos.Sample.from_dict(dict(sd))
        for name in sd:
            if name in ("filepath", "tags"):
                continue
            implied = foo.get_implied_field_kwargs(sample[name])
            assert implied["ftype"] is schema[name]["ftype"], name
            assert implied.get("embedded_doc_type") is schema[name].get("embedded_doc_type"), name


def test_a_fiftyone_export_needs_the_files_and_a_run_of_the_split(tiny_store, tmp_path):
    options = ("--variant", "2", "--min-videos", "1", "--select-fraction", "0", "--val-fraction", "0.5")
    split = _split(tiny_store, tmp_path / "si2", *options)
    no_videos = invoke("export", "fiftyone", split, "--db", tiny_store)
    assert no_videos.exit_code == 3 and "pass --videos DIR" in no_videos.output
    (tmp_path / "run").mkdir()
    no_eval = invoke(
        "export", "fiftyone", split, "--videos", tmp_path, "--run", tmp_path / "run", "--db", tiny_store
    )
    assert no_eval.exit_code == 3 and "hvuaudit eval" in no_eval.output
    assert not (tmp_path / "si2_fiftyone").exists()


def test_hand_edited_split_folders_are_refused_before_anything_is_written(tiny_store, tmp_path):
    import shutil

    options = ("--variant", "2", "--min-videos", "1", "--select-fraction", "0", "--val-fraction", "0.5")
    split = _split(tiny_store, tmp_path / "si2", *options)
    # a set's name that leaves the export folder
    bad = tmp_path / "bad_name"
    shutil.copytree(split, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["eval_sets"] = {"val": "val.csv", "../../outside": "val.csv"}
    (bad / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("export", "mmaction", bad, "--out", tmp_path / "o" / "x", "--db", tiny_store)
    assert result.exit_code == 3 and "set named '../../outside'" in result.output
    assert not (tmp_path / "outside_video.json").exists() and not (tmp_path / "o").exists()
    # a row whose times were changed by hand
    edited = tmp_path / "edited"
    shutil.copytree(split, edited)
    lines = (edited / "train.csv").read_text().splitlines()
    cells = lines[1].split(",")
    cells[2] = "999.0"
    (edited / "train.csv").write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    result = invoke("export", "mmaction", edited, "--out", tmp_path / "e", "--db", tiny_store)
    assert (
        result.exit_code == 3 and "train.csv: row 2" in result.output and "changed by hand" in result.output
    )
    # an --out inside the split folder
    inside = invoke("export", "mmaction", split, "--out", split / "mm", "--db", tiny_store)
    assert inside.exit_code == 5 and "inside" in inside.output and not (split / "mm").exists()


def test_two_clips_with_one_mmaction_name_are_refused(tmp_path):
    (tmp_path / "HVU_Val_x.csv").write_text(
        "Tags,youtube_id,time_start,time_end\n"
        + "".join(f"surfing|beach,vid{i},{i},{i + 2}\n" for i in range(4))
        + "".join(f"surfing|lake,wid{i},{i},{i + 2}\n" for i in range(4))
        + "surfing|beach,vid9,1.01,3.01\nsurfing|beach,vid9,1.04,3.04\n"  # one tenth of a second
    )
    (tmp_path / "cats.csv").write_text("Tag,Category\nsurfing,action\nbeach,scene\nlake,scene\n")
    db = tmp_path / "x.duckdb"
    assert (
        invoke(
            "ingest", tmp_path / "HVU_Val_x.csv", "--categories", tmp_path / "cats.csv", "--db", db
        ).exit_code
        == 0
    )
    split = _split(db, tmp_path / "si1", "--variant", "1", "--min-videos", "1", "--select-fraction", "0",
                   "--val-fraction", "0.5")  # fmt: skip
    result = invoke("export", "mmaction", split, "--db", db)
    assert (
        result.exit_code == 3 and "get the same mmaction2 file name vid9_000010_000030.mp4" in result.output
    )
