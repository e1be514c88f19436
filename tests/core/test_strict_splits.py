"""Splits whose promise holds for every scene tag (--strict), SI-2 with few training scenes
(--max-train-scenes), and the leakage figures the split report gives (issue #18)."""

from __future__ import annotations

import csv
import json
import shutil

import polars as pl
import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvuaudit.errors import InputError
from hvuaudit.splits import SplitParams, build_split, make_strict, verify_split
from hvuaudit.store import open_store


@pytest.fixture(scope="module")
def real_copy(real_store, tmp_path_factory):
    """A writable copy of the real validation store (exports save the split in it)."""
    db = tmp_path_factory.mktemp("strict") / "hvu.duckdb"
    shutil.copy(real_store, db)
    return db


def _leaking_val_clips(folder) -> tuple[int, int]:
    """(val clips with a scene tag seen with their action on a training clip, val clips), from the CSVs."""
    seen = set()
    with (folder / "train.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            seen.update((row["action"], tag) for tag in row["scenes"].split("|") if tag)
    leaking = total = 0
    with (folder / "val.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            total += 1
            leaking += any((row["action"], tag) in seen for tag in row["scenes"].split("|") if tag)
    return leaking, total


@pytest.mark.parametrize("variant", ["1", "2"])
def test_real_strict_splits_have_no_any_tag_leakage(real_copy, tmp_path, variant):
    out = tmp_path / f"si{variant}"
    result = CliRunner().invoke(
        cli,
        [
            "split",
            "--variant",
            variant,
            "--min-videos",
            "25",
            "--strict",
            "--out",
            str(out),
            "--db",
            str(real_copy),
        ],
    )
    assert result.exit_code == 0, result.output
    leaking, total = _leaking_val_clips(out)
    assert leaking == 0 and total > 500
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["strict"] is True and manifest["params"]["strict"] is True
    assert manifest["counts"]["any_tag_leakage"] == {"clips": 0, "share": 0.0}
    with open_store(real_copy) as con:
        report = verify_split(con, out)
    assert report.ok, report.checks
    assert any(name.startswith("7. no val clip carries a scene tag") for name, _, _ in report.checks)


def test_real_non_strict_leakage_is_reported_as_the_issue_measured(real_copy):
    """Issue #18 (real validation file, --min-videos 25): SI-1 74% of val clips have their (action, chosen
    scene) among the training clips' scene tags; SI-2 88% carry a scene seen with their action in training;
    a scene-only rule over every scene tag scores 8.8% on SI-2 (8.6% here: the issue's tie rule is not
    known; within the issue's ±1 point). The issue measured the paper's splits, with nothing held out for
    selection (--select-fraction 0)."""
    with open_store(real_copy) as con:
        si1 = build_split(con, SplitParams(variant="1", min_videos=25, select_fraction=0.0)).report
        si2 = build_split(con, SplitParams(variant="2", min_videos=25, select_fraction=0.0)).report
    assert si1["chosen_scene_seen_in_training"]["share"] == pytest.approx(0.74, abs=0.01)
    assert si2["any_tag_leakage"]["share"] == pytest.approx(0.88, abs=0.01)
    assert si2["scene_only_baseline_all_tags"] == pytest.approx(0.088, abs=0.01)
    assert si2["scene_only_baseline"] == 0.0  # the chosen-scene baseline cannot see it
    assert si2["train_scenes_per_action"]["median"] == 11  # "only a few scenes per action": not by default
    assert si1["train_scenes_per_action"]["median"] == 2
    assert si1["strict"] == {"enabled": False}


def test_real_max_train_scenes_keeps_few_scenes_per_action(real_copy, tmp_path):
    with open_store(real_copy) as con:
        three = build_split(con, SplitParams(variant="2", min_videos=25, max_train_scenes=3))
        both = build_split(con, SplitParams(variant="2", min_videos=25, max_train_scenes=3, val_fraction=0.6))
    scenes = three.report["train_scenes_per_action"]
    assert scenes["median"] <= 3 and scenes["q3"] <= 3
    per_action = three.train.group_by("action").agg(pl.col("scene").n_unique())["scene"]
    assert per_action.max() <= 3
    # with --val-fraction too, a pair goes to training only while both limits allow it
    assert both.train.height <= three.train.height
    assert both.train.group_by("action").agg(pl.col("scene").n_unique())["scene"].max() <= 3


def test_strict_takes_the_smaller_drop_per_action():
    """a1 shares tag y: 1 training clip against 2 val clips, so the training clip goes. a2 shares x: 2 against
    1, so the val clip goes. a3 would lose a whole side either way: the action goes. a4: a tie (1 and 1)
    drops the training clip, so that the evaluation set stays whole."""

    def frame(rows):
        return pl.DataFrame(rows, schema=["clip_id", "action", "scene", "scenes"], orient="row")

    train = frame([
        ("t1", "a1", "x", "x|y"), ("t2", "a1", "z", "z"), ("t3", "a1", "z", "z"),
        ("t4", "a2", "x", "x"), ("t5", "a2", "x", "x|v"), ("t6", "a2", "z", "z"),
        ("t7", "a3", "x", "x|w"),
        ("t8", "a4", "p", "p"), ("t9", "a4", "s", "s"),
    ])  # fmt: skip
    val = frame([
        ("v1", "a1", "y", "y"), ("v2", "a1", "y", "y|w"), ("v3", "a1", "q", "q"),
        ("v4", "a2", "x", "x"), ("v5", "a2", "u", "u"),
        ("v6", "a3", "w", "w"),
        ("v7", "a4", "p", "p"), ("v8", "a4", "r", "r"),
    ])  # fmt: skip
    kept_train, kept_val, report = make_strict(train, val)
    assert sorted(kept_train["clip_id"]) == ["t2", "t3", "t4", "t5", "t6", "t9"]
    assert sorted(kept_val["clip_id"]) == ["v1", "v2", "v3", "v5", "v7", "v8"]
    assert report["dropped_actions"] == ["a3"]
    assert (report["dropped_train_clips"], report["dropped_val_clips"]) == (3, 2)
    assert (report["actions_dropping_train_clips"], report["actions_dropping_val_clips"]) == (2, 1)


def test_bad_split_options_exit_3_and_write_nothing(tiny_store, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    for args, text in [
        (["--variant", "2", "--max-train-scenes", "0"], "--max-train-scenes must be at least 1"),
        (["--variant", "1", "--max-train-scenes", "2"], "applies to SI-2 only"),
        (["--variant", "default", "--strict"], "--strict applies to the Scene-Invariant splits only"),
        (["--variant", "2", "--val-fraction", "1"], "strictly between 0 and 1"),
        (["--variant", "2", "--select-fraction", "1"], "--select-fraction must be in [0, 1)"),
        (["--variant", "2", "--select-fraction", "-0.1"], "--select-fraction must be in [0, 1)"),
        # round(0.001 × n) is 0 for every action (a fraction whose clips no pair can spare: test_splits.py)
        (["--variant", "2", "--select-fraction", "0.001"], "is too small: it rounds to no clip"),
    ]:
        result = runner.invoke(
            cli, ["split", *args, "--min-videos", "1", "--out", str(out), "--db", str(tiny_store)]
        )
        assert result.exit_code == 3 and text in result.stderr, (args, result.output)
        assert not out.exists()
    with pytest.raises(InputError, match="applies to SI-2 only"):
        SplitParams(variant="si1", max_train_scenes=1).normalised()


def _documented_rows() -> dict[str, list[str]]:
    """The table of docs/splits.md ("What each split guarantees, measured"), by split name."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "splits.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = cells[1:]
    return rows


def test_real_the_documented_table_is_what_the_splits_give(real_copy):
    cases = {
        "SI-1": SplitParams(variant="1", min_videos=25),
        "SI-2": SplitParams(variant="2", min_videos=25),
        "strict SI-1": SplitParams(variant="1", min_videos=25, strict=True),
        "strict SI-2": SplitParams(variant="2", min_videos=25, strict=True),
        "SI-2 `--max-train-scenes 3`": SplitParams(variant="2", min_videos=25, max_train_scenes=3),
        "SI-1 `--select-fraction 0` (the paper's)": SplitParams(
            variant="1", min_videos=25, select_fraction=0
        ),
        "SI-2 `--select-fraction 0` (the paper's)": SplitParams(
            variant="2", min_videos=25, select_fraction=0
        ),
    }
    documented = _documented_rows()
    assert set(documented) == set(cases)
    with open_store(real_copy) as con:
        for name, params in cases.items():
            r = build_split(con, params).report
            q = r["train_scenes_per_action"]
            got = [
                f"{r['train']['clips']:,}", f"{r['select']['clips']:,}", f"{r['val']['clips']:,}",
                f"{r['train']['actions']}",
                f"{r['any_tag_leakage']['share']:.1%}", f"{r['scene_only_baseline']:.1%}",
                f"{r['scene_only_baseline_all_tags']:.1%}", f"{q['q1']:g} / {q['median']:g} / {q['q3']:g}",
            ]  # fmt: skip
            assert got == documented[name], name
    with open_store(real_copy) as con:  # docs/trainer.md: the K that --head-loss-reduction sum multiplies by
        labels = build_split(con, SplitParams(variant="2", min_videos=25)).labels
    assert (len(labels["scene"]), len(labels["object"])) == (245, 1273)


def test_real_verify_reports_the_any_tag_count_of_a_non_strict_split(real_copy, tmp_path):
    out = tmp_path / "si1"
    result = CliRunner().invoke(
        cli, ["split", "--variant", "1", "--min-videos", "25", "--out", str(out), "--db", str(real_copy)]
    )
    assert result.exit_code == 0, result.output
    leaking, total = _leaking_val_clips(out)
    with open_store(real_copy) as con:
        report = verify_split(con, out)
    ok, detail = next((ok, detail) for name, ok, detail in report.checks if name.startswith("7."))
    assert ok and detail == f"{leaking} val clip(s) ({leaking / total:.1%} of val); allowed: not --strict"
    assert leaking == 1143  # the 72.6% of docs/splits.md


def _rows(path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("variant", ["1", "2"])
def test_real_select_csv_holds_training_pairs_apart_from_both_sides(real_copy, tmp_path, variant):
    """select.csv, read straight from the CSVs: no clip of train.csv or val.csv, each of its clips of a pair
    that train.csv has, every action drawing about its --select-fraction share, and the draw reproducible."""
    out = tmp_path / f"si{variant}"
    args = ["split", "--variant", variant, "--min-videos", "25", "--db", str(real_copy)]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    train, select, val = (_rows(out / f"{side}.csv") for side in ("train", "select", "val"))
    ids = {
        side: {r["clip_id"] for r in rows}
        for side, rows in (("train", train), ("select", select), ("val", val))
    }
    assert len(select) == len(ids["select"]) > 500
    assert not ids["select"] & ids["train"] and not ids["select"] & ids["val"]
    train_pairs = {(r["action"], r["scene"]) for r in train}
    assert all((r["action"], r["scene"]) in train_pairs for r in select)
    per_action = pl.DataFrame(train + select).group_by("action").len()
    held = pl.DataFrame(select).group_by("action").len().rename({"len": "held"})
    shares = per_action.join(held, on="action", how="left").fill_null(0)
    # round(0.1 × n) of each action (halves up), or fewer where its pairs cannot spare as many
    assert (shares["held"] <= (shares["len"] * 0.1 + 0.5).floor()).all()
    assert shares["held"].sum() / shares["len"].sum() == pytest.approx(0.1, abs=0.01)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["select_set"] == "select.csv" and manifest["params"]["select_fraction"] == 0.1
    # another seed draws other clips; the same seed the same bytes
    again = tmp_path / "again"
    other = tmp_path / "other"
    assert CliRunner().invoke(cli, [*args, "--out", str(again)]).exit_code == 0
    assert CliRunner().invoke(cli, [*args, "--out", str(other), "--select-seed", "1"]).exit_code == 0
    assert (again / "select.csv").read_bytes() == (out / "select.csv").read_bytes()
    assert {r["clip_id"] for r in _rows(other / "select.csv")} != ids["select"]
