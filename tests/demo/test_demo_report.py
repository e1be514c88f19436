"""REPORT.md is rendered from results.json alone: a real quick-demo results.json, and the branches it
lacks."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hvudemo.report import render_markdown
from hvudemo.settings import demo_settings

FIXTURE = Path(__file__).parents[1] / "fixtures" / "demo_results_quick.json"
TABLES = {"val": "| table of val |\n", "indist": "| table of indist |\n", "uniform": "| table of uniform |\n"}


@pytest.fixture
def summary() -> dict:
    return json.loads(FIXTURE.read_text())


def test_the_quick_report_states_the_numbers_of_results_json(summary):
    text = render_markdown(demo_settings(quick=True, seeds=None), summary, TABLES)
    base = summary["methods"]["baseline"]
    assert text.startswith(
        "# hvuaudit demo: scene bias on the built-in benchmark\n\nQuick demo: 1 seed(s) (0;"
    )
    assert f"{100 * base['acc_val']['mean']:.1f}" in text  # the baseline's scene-invariant accuracy
    for needle in (
        "## Validity checks",
        "- **PASS**",
        "| Baseline |",
        "left out of `--quick`",
        "### Set `uniform` (uniform: every scene equally often with every action)",
        "| table of uniform |",
        "](figures/curves.png)",
        "hvuaudit eval runs/amt --checkpoint best\n```\n",
        # the selection set: its size, and that nothing is chosen on the sets that are scored
        f"{summary['splits']['0']['si2']['select']['clips']:,} more clips of the same pairs held out as the "
        "**selection set** (`select.csv`",
        "Every run is evaluated with `best.pt`, the epoch with the best action accuracy on the selection set",
        "--select-fraction 0.1 --subset train",
    ):
        assert needle in text, needle
    assert "A check failed" not in text and "## Sensitivity" not in text
    assert text.endswith("```\n") and "{{" not in text and "{%" not in text


def test_a_failed_check_a_sweep_and_a_diverged_run_are_reported(summary):
    full = copy.deepcopy(summary)
    full["checks"][0]["passed"] = False
    full["figures"] = []
    runaway = {
        **copy.deepcopy(full["runs"]["main/amt_seed0"]),
        "group": "sensitivity",
        "label": "λ = 1.0",
        "scene_loss_runaway": True,
    }
    diverged = {**runaway, "label": "Eq. 3 literally", "diverged": "a non-finite loss at epoch 3"}
    full["runs"].update({"sensitivity/a": runaway, "sensitivity/b": diverged})
    settings = replace(demo_settings(quick=False, seeds=1), methods=("baseline", "amt"))
    text = render_markdown(settings, full, TABLES)
    assert "- **FAIL**" in text and "**A check failed, so the results below" in text
    assert "## Sensitivity (measured on the test pairs, seed 0 only)" in text
    assert "| Eq. 3 literally | diverged: a non-finite loss at epoch 3 | | | | |" in text
    assert "(ran away) |" in text and "Eq. 3 literally diverged." in text
    assert (
        "## Figures" not in text
        and "The λ sensitivity sweep and the literal Eq. 3 run are left out" not in text
    )
    # a full demo of fewer methods (bench/object_head.py --train) does not blame --quick for them
    assert "are not trained in this demo (its settings' methods); the full demo" in text
    assert "left out of `--quick`" not in text.split("## Validity checks")[1].split("## Results")[1]


def test_the_template_ships_with_the_package(tmp_path):
    """An installed hvudemo finds its template (it is package data, not a file next to the source tree)."""
    code = "import hvudemo.report as r; print(r._template().name)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == "REPORT.md.j2", run.stderr


def test_a_demo_written_before_a_setting_existed_is_reused_and_another_scheme_is_refused(tmp_path):
    from hvuaudit.errors import InputError
    from hvucontracts.errors import ConflictError
    from hvudemo.pipeline import _prepare_out

    settings = demo_settings(quick=True, seeds=None)
    out = tmp_path / "demo"
    _prepare_out(out, settings, force=False)
    (out / "keep.txt").write_text("a finished step")
    doc = json.loads((out / "demo.json").read_text())
    del doc["settings"]["objects"]  # demo.json as an earlier version wrote it
    (out / "demo.json").write_text(json.dumps(doc))
    _prepare_out(out, settings, force=False)  # the same demo: reused, nothing replaced
    assert (out / "keep.txt").read_text() == "a finished step"
    assert json.loads((out / "demo.json").read_text())["settings"]["objects"] == "family"
    with pytest.raises(InputError, match="--objects must be one of"):  # before demo.json records it
        demo_settings(quick=True, seeds=None, objects="per_action")
    with pytest.raises(ConflictError, match="holds a demo with other settings"):
        _prepare_out(out, demo_settings(quick=True, seeds=None, objects="per-action"), force=False)
    assert (out / "keep.txt").read_text() == "a finished step"


def test_the_report_says_which_object_scheme_the_benchmark_used(summary):
    settings = demo_settings(quick=True, seeds=None)
    family = render_markdown(settings, summary, TABLES)  # a results.json from before --objects: family
    assert "so the shape tells one bit of the action" in family and "--objects" not in family
    assert "--clips 2000 --seed 0\nhvuaudit ingest bench/HVU_Train_Benchmark.csv" in family  # one per line
    per_action = copy.deepcopy(summary)
    for config in per_action["benchmark"].values():
        config["objects"] = "per-action"
    text = render_markdown(replace(settings, objects="per-action"), per_action, TABLES)
    assert "each action has its own shape, one of eight" in text
    assert "--seed 0 --objects per-action\nhvuaudit ingest bench/HVU_Train_Benchmark.csv" in text


def test_a_benchmark_written_before_a_knob_existed_is_reused_and_an_unknown_knob_is_not(tmp_path):
    pytest.importorskip("av")  # it writes the clips (the floors' suite has no PyAV)
    from hvudemo.pipeline import _generate
    from hvudemo.settings import seed_dir

    settings = replace(demo_settings(quick=True, seeds=None), clips=600)
    out, said = tmp_path / "demo", []
    _generate(out, settings, 0, 2, said.append)
    manifest = seed_dir(out, 0) / "benchmark" / "benchmark.json"
    doc = json.loads(manifest.read_text())
    del doc["config"]["objects"]  # as the versions before --objects wrote it
    manifest.write_text(json.dumps(doc))
    assert _generate(out, settings, 0, 2, said.append)["config"]["objects"] == "family"
    assert said[-1].endswith("reused " + str(seed_dir(out, 0) / "benchmark"))
    doc["config"]["shadows"] = True  # a knob of a later version: another benchmark, written again
    manifest.write_text(json.dumps(doc))
    _generate(out, settings, 0, 2, said.append)
    assert "mp4 clips" in said[-1] and "shadows" not in json.loads(manifest.read_text())["config"]
