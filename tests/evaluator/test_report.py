"""`hvuaudit report`: the paper's Table 2 from hand-written run folders, checked exactly."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _write_run(
    root: Path,
    name: str,
    *,
    method: str,
    variant: str,
    seed: int,
    backbone: str = "r3d18",
    scene: str | None = None,
    object_role: str | None = None,
    weights: tuple[float, float] = (0.0, 0.0),
    adversary: str = "grl",
    val: dict | None = None,
    extra_sets: dict | None = None,
) -> Path:
    """A run folder as the trainer writes it; eval.json only when `val` is given."""
    folder = root / name
    folder.mkdir(parents=True)
    config = {
        "method": method,
        "backbone": backbone,
        "adversary": adversary,
        "lambda": weights[0],
        "gamma": weights[1],
        "seed": seed,
        "tasks": {"action": "learn", "scene": scene, "object": object_role},
        "split": {"format": "hvuaudit-split/1", "variant": variant, "params": {}, "counts": {}},
        "labels": {"action": ["a", "b"], "scene": ["s"], "object": ["o"]},
    }
    (folder / "config.json").write_text(json.dumps(config))
    if val is not None:
        val_set = {
            "n": 100,
            "top1_any": round(val["top1"] + 0.05, 6),  # another true action of a clip counts too
            "top5": 0.9,
            "mean_class_acc": val["top1"],
            "per_class": {},
            "dcorr_n": 90,
            **val,
        }
        evaluation = {"checkpoint": "best", "sets": {"val": val_set, **(extra_sets or {})}, **val_set}
        (folder / "eval.json").write_text(json.dumps(evaluation))
    return folder


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Eleven runs: seeds to aggregate, three variants, an unevaluated seed and an unevaluated setting."""
    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    amt = {"method": "amt", "variant": "si2", "scene": "adversarial", "object_role": "auxiliary"}
    runs_by_name = {
        "baseline_si2_s0": {"method": "baseline", "variant": "si2", "seed": 0, "val": {"top1": 0.50, "dcorr2": 0.30}},
        "baseline_si2_s1": {"method": "baseline", "variant": "si2", "seed": 1, "val": {"top1": 0.52, "dcorr2": 0.32}},
        "baseline_si2_s2": {"method": "baseline", "variant": "si2", "seed": 2, "val": {"top1": 0.54, "dcorr2": 0.34}},
        # a stray λ and γ in a baseline's config must not split its row
        "baseline_default_s0": {"method": "baseline", "variant": "default", "seed": 0, "weights": (-0.3, 0.5),
                                "val": {"top1": 0.70, "dcorr2": 0.40}},
        "baseline_tiny": {"method": "baseline", "backbone": "tiny", "variant": "si2", "seed": 0,
                          "val": {"top1": 0.30, "dcorr2": None}},
        "mtl_si1": {"method": "mtl", "variant": "si1", "seed": 0, "scene": "auxiliary", "weights": (0.5, 0.0),
                    "val": {"top1": 0.60, "dcorr2": 0.50}, "extra_sets": {"test": {"top1": 0.58, "dcorr2": 0.52}}},
        "amt_s0": {**amt, "seed": 0, "weights": (-0.3, 0.5), "val": {"top1": 0.55, "dcorr2": 0.10}},
        "amt_s1": {**amt, "seed": 1, "weights": (-0.3, 0.5), "val": {"top1": 0.57, "dcorr2": 0.12}},
        "amt_s2": {**amt, "seed": 2, "weights": (-0.3, 0.5)},  # not evaluated yet
        "amt_strong": {**amt, "seed": 0, "weights": (-1.0, 0.5), "val": {"top1": 0.20, "dcorr2": 0.05}},
        "amt_no_object": {"method": "amt-no-object", "variant": "si2", "seed": 0, "scene": "adversarial",
                          "weights": (-0.3, 0.0), "adversary": "negative"},
    }  # fmt: skip
    for name, settings in runs_by_name.items():
        _write_run(root, name, **settings)
    return root


def _report(*args: str):
    return CliRunner().invoke(cli, ["report", *args])


EXPECTED_MARKDOWN = """\
| Method | Backbone | Tasks (A S O) | λ | γ | Adversary | Head BCE | Checkpoint | Selected on | Pretrained | Strict | Default Acc | Default dcorr² | SI-1 Acc | SI-1 dcorr² | SI-2 Acc | SI-2 dcorr² |
|---|---|---|---|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|
| Baseline | r3d18 | ⊕ – – | – | – | – | – | best | val | none | no | 70.0 (1) | 0.4000 (1) |  |  | 52.0 ± 2.0 (3) | 0.3200 ± 0.0200 (3) |
| Baseline | tiny | ⊕ – – | – | – | – | – | best | val | none | no |  |  |  |  | 30.0 (1) | – |
| MTL | r3d18 | ⊕ ⊕ – | 0.5 | – | – | mean | best | val | none | no |  |  | 60.0 (1) | 0.5000 (1) |  |  |
| AMT w/o object | r3d18 | ⊕ ⊖ – | -0.3 | – | negative | mean | – | val | none | no |  |  |  |  | not evaluated | not evaluated |
| AMT | r3d18 | ⊕ ⊖ ⊕ | -1 | 0.5 | grl | mean | best | val | none | no |  |  |  |  | 20.0 (1) | 0.0500 (1) |
| AMT | r3d18 | ⊕ ⊖ ⊕ | -0.3 | 0.5 | grl | mean | best | val | none | no |  |  |  |  | 56.0 ± 1.4 (2) | 0.1100 ± 0.0141 (2) |

Beside the headline, on the val set (%; rows in the order of the table above):

| Method | Backbone | Tasks (A S O) | λ | γ | Default top-1 any | Default top-5 | Default mean class | SI-1 top-1 any | SI-1 top-5 | SI-1 mean class | SI-2 top-1 any | SI-2 top-5 | SI-2 mean class |
|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| Baseline | r3d18 | ⊕ – – | – | – | 75.0 (1) | 90.0 (1) | 70.0 (1) |  |  |  | 57.0 ± 2.0 (3) | 90.0 ± 0.0 (3) | 52.0 ± 2.0 (3) |
| Baseline | tiny | ⊕ – – | – | – |  |  |  |  |  |  | 35.0 (1) | 90.0 (1) | 30.0 (1) |
| MTL | r3d18 | ⊕ ⊕ – | 0.5 | – |  |  |  | 65.0 (1) | 90.0 (1) | 60.0 (1) |  |  |  |
| AMT w/o object | r3d18 | ⊕ ⊖ – | -0.3 | – |  |  |  |  |  |  | not evaluated | not evaluated | not evaluated |
| AMT | r3d18 | ⊕ ⊖ ⊕ | -1 | 0.5 |  |  |  |  |  |  | 25.0 (1) | 90.0 (1) | 20.0 (1) |
| AMT | r3d18 | ⊕ ⊖ ⊕ | -0.3 | 0.5 |  |  |  |  |  |  | 61.0 ± 1.4 (2) | 90.0 ± 0.0 (2) | 56.0 ± 1.4 (2) |

Acc, the headline: top-1 action accuracy (%) against the clip's primary action (the paper's) on the val \
set. Beside it: top-1 any counts the top-scoring action as right when it is any of the clip's action \
tags, top-5 whether the primary action is among the five top-scoring, mean class is the top-1 accuracy \
averaged over the action classes. dcorr²: squared distance correlation between features and scene \
(V-statistic; 0 = no scene information, lower is better). Mean ± std over seeds, number of seeds in \
parentheses. Tasks: ⊕ learned, ⊖ adversarial, – absent, for action, scene and object. Head BCE: each \
scene/object loss is the mean over its classes or their sum (the paper's Eq. 2), which scales λ and γ. \
Checkpoint: the one scored (best: best.pt, chosen on the 'Selected on' set). Pretrained: the starting \
weights' sha256, or none. Runs that differ in any column left of the scores are separate rows.

Rows selected on val, the set scored here: their checkpoint, learning-rate drops and early stop read the \
clips they are scored on, so their accuracy is optimistic.

Not evaluated:
- runs/amt_no_object (AMT w/o object, r3d18, SI-2, seed 0): no eval.json
- runs/amt_s2 (AMT, r3d18, SI-2, seed 2): no eval.json
"""


def test_markdown_table_matches_exactly(runs):
    result = _report(*sorted(str(folder) for folder in runs.iterdir()))
    assert result.exit_code == 0, result.output
    assert result.stdout == EXPECTED_MARKDOWN
    assert result.stderr == ""


def test_a_folder_of_runs_stands_for_its_runs(runs):
    assert _report("runs").stdout == EXPECTED_MARKDOWN


def test_csv_holds_the_raw_numbers(runs):
    result = _report("runs", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["method"] for row in rows] == ["baseline", "baseline", "mtl", "amt-no-object", "amt", "amt"]
    baseline = rows[0]
    assert (baseline["scene"], baseline["lambda"], baseline["adversary"]) == ("", "", "")
    assert float(baseline["si2_acc_mean"]) == pytest.approx(0.52)
    # beside the headline: the other accuracies of eval.json, aggregated the same way
    assert float(baseline["si2_top1_any_mean"]) == pytest.approx(0.57)
    assert float(baseline["si2_top5_mean"]) == pytest.approx(0.9)
    assert float(baseline["si2_mean_class_acc_std"]) == pytest.approx(0.02)
    assert float(baseline["si2_acc_std"]) == pytest.approx(0.02)
    assert float(baseline["si2_dcorr2_mean"]) == pytest.approx(0.32)
    assert (baseline["si2_seeds"], baseline["si2_not_evaluated"], baseline["si1_seeds"]) == ("3", "0", "0")
    assert baseline["default_acc_std"] == ""  # one seed: no spread
    amt = rows[-1]
    assert (amt["scene"], amt["object"], amt["lambda"], amt["gamma"]) == (
        "adversarial",
        "auxiliary",
        "-0.3",
        "0.5",
    )
    assert (amt["si2_seeds"], amt["si2_not_evaluated"]) == ("2", "1")


def test_json_lists_runs_and_unevaluated_ones(runs):
    result = _report("runs", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["set"] == "val" and report["variants"] == ["default", "si1", "si2"]
    assert report["headline"] == "top1"  # the paper's accuracy; the others sit beside it
    amt = report["rows"][-1]
    assert amt["tasks"] == {"action": "learn", "scene": "adversarial", "object": "auxiliary"}
    cell = amt["variants"]["si2"]
    assert cell["seeds"] == [0, 1] and cell["runs"] == ["runs/amt_s0", "runs/amt_s1"]
    assert cell["not_evaluated"] == ["runs/amt_s2"]
    assert cell["acc_mean"] == pytest.approx(0.56)
    assert report["not_evaluated"] == [
        {"run": "runs/amt_no_object", "reason": "no eval.json"},
        {"run": "runs/amt_s2", "reason": "no eval.json"},
    ]


def test_another_eval_set(runs):
    result = _report("runs", "--set", "test")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        lines[4]
        == "| MTL | r3d18 | ⊕ ⊕ – | 0.5 | – | – | mean | best | val | none | no |  |  | 58.0 (1) | 0.5200 (1) |  |  |"
    )
    assert "on the test set" in result.stdout
    assert "- runs/amt_s0 (AMT, r3d18, SI-2, seed 0): eval.json has no set 'test' (it has: val)" in lines


def test_same_seed_twice_is_averaged_with_a_note(runs):
    again = {"method": "amt", "variant": "si2", "scene": "adversarial", "object_role": "auxiliary"}
    _write_run(runs, "amt_s1_again", seed=1, weights=(-0.3, 0.5), val={"top1": 0.59, "dcorr2": 0.14}, **again)
    result = _report("runs")
    assert result.exit_code == 0
    assert "| 57.0 ± 2.0 (3) |" in result.stdout
    assert result.stderr == (
        "note: runs/amt_s1 and runs/amt_s1_again have the same settings and seed 1; both are averaged\n"
    )


def test_folder_without_runs_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _report(str(tmp_path / "empty"))
    assert result.exit_code == 4
    assert result.stderr.startswith(f"error: {tmp_path / 'empty'} is not a run folder (no config.json)")


def test_broken_config_is_an_error_naming_the_file(runs):
    (runs / "amt_s0" / "config.json").write_text("{not json")
    result = _report("runs")
    assert result.exit_code == 3
    assert "could not read runs/amt_s0/config.json" in result.stderr


def test_config_without_split_variant_is_an_error(runs):
    config_path = runs / "amt_s0" / "config.json"
    config = json.loads(config_path.read_text())
    del config["split"]["variant"]
    config_path.write_text(json.dumps(config))
    result = _report("runs")
    assert result.exit_code == 3
    assert "runs/amt_s0/config.json has no 'split.variant'" in result.stderr


def test_accuracy_in_percent_is_refused(runs):
    eval_path = runs / "amt_s0" / "eval.json"
    evaluation = json.loads(eval_path.read_text())
    evaluation["sets"]["val"]["top1"] = 55.0
    eval_path.write_text(json.dumps(evaluation))
    result = _report("runs")
    assert result.exit_code == 3
    assert "runs/amt_s0/eval.json: top1 of set 'val' is 55.0; expected a fraction in [0, 1]" in result.stderr


def test_report_needs_neither_torch_nor_hvuaudit_internals(runs):
    """The report reads JSON only: it must work where the training extra is not installed."""
    check = (
        "import sys; from click.testing import CliRunner; from hvuaudit.cli import cli; "
        "result = CliRunner().invoke(cli, ['report', 'runs']); "
        "assert result.exit_code == 0, result.output; "
        "assert 'torch' not in sys.modules, 'report imported torch'"
    )
    subprocess.run([sys.executable, "-c", check], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_set_without_accuracy_is_not_evaluated(runs):
    eval_path = runs / "amt_s1" / "eval.json"
    evaluation = json.loads(eval_path.read_text())
    evaluation["sets"]["val"]["top1"] = None  # an empty set
    eval_path.write_text(json.dumps(evaluation))
    result = _report("runs")
    assert result.exit_code == 0, result.output
    assert "| 55.0 (1) | 0.1000 (1) |" in result.stdout
    assert (
        "- runs/amt_s1 (AMT, r3d18, SI-2, seed 1): eval.json has no top-1 accuracy for set 'val'"
        in result.stdout
    )


def test_ramped_and_constant_adversaries_are_different_rows(tmp_path):
    amt = {
        "method": "amt",
        "variant": "si2",
        "scene": "adversarial",
        "object_role": "auxiliary",
        "weights": (-0.3, 1.0),
    }
    for name, schedule, top1 in (("ramp", "dann", 0.9), ("flat", "constant", 0.6)):
        folder = _write_run(tmp_path, name, seed=0, val={"top1": top1, "dcorr2": 0.1}, **amt)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "adv_schedule": schedule}))
    result = _report(str(tmp_path / "ramp"), str(tmp_path / "flat"))
    assert result.exit_code == 0, result.output
    headline = result.stdout.split("Beside the headline")[0]
    rows = [line for line in headline.splitlines() if line.startswith("| AMT")]
    assert len(rows) == 2  # not averaged together
    assert "| grl | " in rows[0] + rows[1] and "| grl+dann | " in rows[0] + rows[1]
    assert any("| grl+dann |" in r and "90.0 (1)" in r for r in rows)


def _amt_run(
    root: Path, name: str, *, seed: int, top1: float, checkpoint: str = "best", **config_extra
) -> Path:
    """An AMT run on SI-2 scored with ``checkpoint``; ``config_extra`` is merged into its config.json."""
    amt = {"method": "amt", "variant": "si2", "scene": "adversarial", "object_role": "auxiliary"}
    folder = _write_run(root, name, seed=seed, weights=(-0.3, 0.5), val={"top1": top1, "dcorr2": 0.1}, **amt)
    config = json.loads((folder / "config.json").read_text())
    split = {**config["split"], **config_extra.pop("split", {})}
    (folder / "config.json").write_text(json.dumps({**config, **config_extra, "split": split}))
    evaluation = json.loads((folder / "eval.json").read_text())
    (folder / "eval.json").write_text(json.dumps({**evaluation, "checkpoint": checkpoint}))
    return folder


@pytest.mark.parametrize(
    ("field", "first", "second"),
    [
        ("checkpoint", {"checkpoint": "best"}, {"checkpoint": "last"}),
        ("selection set", {"selection_set": "select"}, {"selection_set": "val"}),
        (
            "pretraining",
            {},
            {
                "pretrained": "/w/r3d18_K.pth",
                "pretraining": {"source": "/w/r3d18_K.pth", "sha256": "ab" * 32},
            },
        ),
        ("strict", {"split": {"strict": True}}, {"split": {"strict": False}}),
        ("head loss reduction", {"head_loss_reduction": "mean"}, {"head_loss_reduction": "sum"}),
    ],
)
def test_runs_scored_differently_are_never_averaged(tmp_path, field, first, second):
    """Two seeds of one model setting that differ in how they were scored are two rows, each of one seed."""
    one = _amt_run(tmp_path, "one", seed=0, top1=0.40, **first)
    two = _amt_run(tmp_path, "two", seed=1, top1=0.80, **second)
    result = _report(str(one), str(two), "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert len(rows) == 2, field
    means = sorted(row["variants"]["si2"]["acc_mean"] for row in rows)
    assert means == [pytest.approx(0.40), pytest.approx(0.80)]
    assert all(row["variants"]["si2"]["seeds"] in ([0], [1]) for row in rows)
    # and the same two runs scored alike are one row of two seeds: the field alone splits them
    alike = _amt_run(tmp_path, "alike", seed=1, top1=0.80, **first)
    merged = json.loads(_report(str(one), str(alike), "--format", "json").stdout)["rows"]
    assert len(merged) == 1 and merged[0]["variants"]["si2"]["acc_mean"] == pytest.approx(0.60)


def test_the_markdown_names_how_each_row_was_scored(tmp_path):
    sha = "0123456789abcdef" * 4
    _amt_run(
        tmp_path, "pre", seed=0, top1=0.5, checkpoint="last", selection_set="select",
        pretrained="/w/r3d18_K.pth", pretraining={"source": "/w/r3d18_K.pth", "sha256": sha},
        split={"strict": True},
    )  # fmt: skip
    result = _report(str(tmp_path / "pre"))
    row = result.stdout.splitlines()[2]
    assert "| mean | last | select | sha256:0123456789ab | yes |" in row
    assert "Rows selected on val" not in result.stdout  # selected on select.csv, scored on val


def test_ensembles_of_other_sizes_are_other_rows_and_say_their_heads(tmp_path):
    amt = {"method": "amt", "variant": "si2", "scene": "adversarial", "object_role": "auxiliary"}
    for name, heads, top1 in (("k4", 4, 0.9), ("k8", 8, 0.7)):
        folder = _write_run(
            tmp_path,
            name,
            seed=0,
            weights=(-0.3, 1.0),
            adversary="ensemble",
            val={"top1": top1, "dcorr2": 0.1},
            **amt,
        )
        config = json.loads((folder / "config.json").read_text())
        extra = {"adv_schedule": "dann", "adversary_heads": heads, "reinit_every": 2}
        (folder / "config.json").write_text(json.dumps({**config, **extra}))
    result = _report(str(tmp_path / "k4"), str(tmp_path / "k8"))
    assert result.exit_code == 0, result.output
    rows = [
        line
        for line in result.stdout.split("Beside the headline")[0].splitlines()
        if line.startswith("| AMT")
    ]
    assert len(rows) == 2 and any("| ensemble4/2+dann |" in r and "90.0 (1)" in r for r in rows)
    assert any("| ensemble8/2+dann |" in r for r in rows)
