"""`hvuaudit train` / `hvuaudit eval` end to end on tiny mp4 clips (CPU, one thread, 1-2 epochs)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvucontracts import splitfolder
from tests.trainer_fixtures import TINY_ARGS, make_split, write_csv, write_tasks
from trainer import videos as trainer_videos
from trainer.config import ConfigError
from trainer.engine import train_one_epoch
from trainer.errors import DivergedError
from trainer.losses import Objective
from trainer.models import ModelConfig, build_model

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
METRIC_KEYS = {
    "loss",
    "loss_action",
    "loss_scene",
    "loss_object",
    "action_acc",
    "scene_acc",
    "object_map",
    "skipped_clips",
}
SET_KEYS = {
    "n",
    "top1",
    "top1_any",
    "top5",
    "mean_class_acc",
    "per_class",
    "scene_acc",
    "object_map",
    "dcorr2",
    "dcorr2_u",
    "dcorr_n",
    "seen_pair_acc",
    "unseen_pair_acc",
}


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Path, Path]:
    """A split folder that records its videos directory (so `--split` alone is enough)."""
    return make_split(tmp_path_factory.mktemp("run"), extra_sets={"uniform": 6}, record_videos=True)


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def train_cli(split_dir: Path, out: Path, *args: str):
    return invoke("train", "--split", split_dir, "--out", out, *TINY_ARGS, *args)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def amt_run(split, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("amt") / "run"
    result = train_cli(split[0], out, "--method", "amt", "--epochs", "2")
    assert result.exit_code == 0, result.output
    return out


# --------------------------------------------------------------------------- one run per method
@pytest.mark.parametrize(
    ("method", "extra", "tasks"),
    [
        ("baseline", [], {"action": "learn", "scene": None, "object": None}),
        ("mtl", [], {"action": "learn", "scene": "auxiliary", "object": None}),
        ("amt-no-object", [], {"action": "learn", "scene": "adversarial", "object": None}),
        (
            "amt",
            "--adversary negative --adv-schedule constant --optimizer adam --schedule onecycle".split(),
            {"action": "learn", "scene": "adversarial", "object": "auxiliary"},
        ),
        (
            "pretrain-adv",
            ["--pretrain-epochs", "1"],
            {"action": "learn", "scene": "adversarial", "object": None},
        ),
    ],
)
def test_each_method_trains_a_run_folder(split, tmp_path, method, extra, tasks):
    out = tmp_path / method
    result = train_cli(split[0], out, "--method", method, "--epochs", "2", *extra)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert "epoch 2/2" in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == method and config["tasks"] == tasks
    assert {
        "backbone",
        "adversary",
        "adv_schedule",
        "lambda",
        "gamma",
        "seed",
        "epochs",
        "lr",
        "optimizer",
    } <= set(config)
    assert config["split"]["format"] == "hvuaudit-split/1"
    assert config["labels"]["action"] == ["jump", "run", "swim"]
    assert config["split_dir"] == str(split[0].resolve()) and config["code_version"]
    assert config["videos_source"] == "the split manifest (videos.dir)"
    lines = read_metrics(out)
    assert [line["epoch"] for line in lines] == [1, 2]
    for line in lines:
        assert line["selection_set"] == "select" and "val" not in line  # val is scored by eval only
        assert METRIC_KEYS <= set(line["train"]) and METRIC_KEYS <= set(line["select"])
        assert {"lr", "seconds"} <= set(line)
    has_scene = tasks["scene"] is not None and method != "pretrain-adv"
    assert (lines[1]["select"]["scene_acc"] is not None) == has_scene
    assert (lines[1]["select"]["object_map"] is not None) == (tasks["object"] is not None)
    if method == "pretrain-adv":
        assert [line["phase"] for line in lines] == ["pretrain", "finetune"]
        assert lines[0]["train"]["loss_scene"] is not None and lines[1]["train"]["loss_scene"] is None
    if "--adversary" in extra:
        assert config["lambda"] == -0.3 and lines[0]["lambda_eff"] == -0.3
    assert (out / "checkpoint.pt").is_file() and (out / "best.pt").is_file()
    assert json.loads((out / "preflight.json").read_text())["sets"]["train"]["usable"] == 24


def test_tasks_file_and_default_out(split, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tasks = write_tasks(tmp_path / "tasks.json")
    result = invoke(
        "train", "--split", split[0], *TINY_ARGS, "--tasks", tasks, "--lambda", "0.2", "--epochs", "1"
    )
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "runs" / "si2_amt_tiny_seed0" / "config.json").read_text())
    assert (config["lambda"], config["gamma"], config["tasks_file"]) == (-0.2, 1.0, str(tasks))
    # no --method with --tasks: the file's roles choose it, and the run says so
    assert config["method"] == "amt" and "--method auto" in result.stderr
    refused = invoke("train", "--split", split[0], *TINY_ARGS, "--method", "mtl", "--tasks", tasks)
    assert refused.exit_code == 3 and "--method mtl makes the scene auxiliary" in refused.stderr


def test_plateau_lowers_the_lr_and_patience_stops_the_run(split, tmp_path):
    out = tmp_path / "stuck"
    args = "--method baseline --lr 1e-6 --lr-patience 0 --patience 2 --epochs 5".split()
    result = train_cli(split[0], out, *args)
    assert result.exit_code == 0, result.output
    lines = read_metrics(out)
    assert [line["epoch"] for line in lines] == [1, 2, 3]  # epochs 2 and 3 did not beat epoch 1
    assert [line["lr"] for line in lines] == pytest.approx([1e-6, 1e-7, 1e-8])
    assert "stopped early" in result.stderr
    assert torch.load(out / "best.pt", weights_only=True)["state"]["best_epoch"] == 1
    again = invoke("train", "--out", out, "--resume")
    assert again.exit_code == 0 and "nothing to do" in again.stderr


def test_warmup_rises_linearly_then_the_schedule_takes_over_and_resumes_exactly(split, tmp_path):
    # 24 training clips in batches of 8: 3 steps an epoch, so 2 warm-up epochs are 6 steps
    args = "--method baseline --lr 0.01 --warmup-epochs 2 --lr-patience 0 --patience 0 --epochs 4".split()
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert train_cli(split[0], once, *args).exit_code == 0
    lrs = [line["lr"] for line in read_metrics(once)]
    start = 0.001  # of --lr at the first batch, rising linearly every batch
    assert lrs[:2] == pytest.approx([0.01 * (start + (1 - start) * 3 / 6), 0.01])
    assert lrs[2] == pytest.approx(0.01) and lrs[3] in (pytest.approx(0.01), pytest.approx(0.001))
    config = json.loads((once / "config.json").read_text())
    assert config["warmup_epochs"] == 2
    # stopped inside the warm-up and resumed: the same rates and weights as the run in one go
    assert train_cli(split[0], twice, *args, "--stop-after", "1").exit_code == 0
    assert invoke("train", "--out", twice, "--resume").exit_code == 0
    assert [line["lr"] for line in read_metrics(twice)] == lrs
    a, b = (torch.load(run / "checkpoint.pt", weights_only=True)["model"] for run in (once, twice))
    assert all(torch.equal(a[key], b[key]) for key in a)
    # one-cycle: the rise to --max-lr takes the warm-up epochs instead of the first 30% of the steps
    cycle = "--method baseline --optimizer adam --schedule onecycle --max-lr 0.01 --epochs 4".split()
    for name, extra in (("default", []), ("warm", ["--warmup-epochs", "2"])):
        assert train_cli(split[0], tmp_path / name, *cycle, *extra).exit_code == 0
    default, warm = ([line["lr"] for line in read_metrics(tmp_path / n)] for n in ("default", "warm"))
    assert default[0] > default[1]  # past its peak at step 3.6 of 12
    assert warm[0] < warm[1] and warm[1] > 0.9 * 0.01  # rising until step 5, its peak
    refused = train_cli(split[0], tmp_path / "no", "--warmup-epochs", "4", "--epochs", "4")
    assert refused.exit_code == 3 and "leaves no epoch of --epochs 4 after the warm-up" in refused.stderr


# --------------------------------------------------------------------------- exact resume
def test_resume_is_exact(split, tmp_path):
    common = "--method amt --epochs 2 --optimizer adam --schedule onecycle --max-lr 3e-3".split()
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert train_cli(split[0], once, *common).exit_code == 0
    first = train_cli(split[0], twice, *common, "--stop-after", "1")
    assert first.exit_code == 0, first.output
    assert [line["epoch"] for line in read_metrics(twice)] == [1]
    resumed = invoke("train", "--out", twice, "--resume")  # every setting comes from the checkpoint
    assert resumed.exit_code == 0, resumed.output
    assert "resumed" in resumed.stderr
    a = torch.load(once / "checkpoint.pt", weights_only=True)
    b = torch.load(twice / "checkpoint.pt", weights_only=True)
    assert a["state"]["epoch"] == b["state"]["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, value in a["optimizer"]["state"][0].items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"]["state"][0][key]))
    strip = [{k: v for k, v in line.items() if k != "seconds"} for line in read_metrics(once)]
    assert strip == [{k: v for k, v in line.items() if k != "seconds"} for line in read_metrics(twice)]
    again = invoke("train", "--out", twice, "--resume")
    assert again.exit_code == 0 and "nothing to do" in again.stderr


def test_resume_refuses_changed_settings_and_missing_checkpoints(amt_run, tmp_path):
    result = invoke("train", "--out", amt_run, "--resume", "--lr", "0.5")
    assert result.exit_code == 3
    assert "error: --resume: setting 'lr' differs: the run in" in result.stderr and "0.5" in result.stderr
    result = invoke("train", "--out", tmp_path / "empty", "--resume")
    assert result.exit_code == 4 and "checkpoint.pt: no such checkpoint" in result.stderr


def test_existing_run_is_not_overwritten_without_force(split, amt_run):
    result = train_cli(split[0], amt_run, "--epochs", "1")
    assert result.exit_code == 5 and "already holds a run" in result.stderr and "--resume" in result.stderr


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["--lambda", "0.3"], {}, 3, "--lambda 0.3 contradicts --method amt"),
        (["--backbone", "r3d99"], {}, 3, "unknown backbone 'r3d99'"),
        (["--method", "baseline", "--gamma", "1"], {}, 3, "--method baseline trains no object head"),
        ([], {"HVUAUDIT_VIDEOS": "/nonexistent/videos"}, 3, "(from $HVUAUDIT_VIDEOS) does not exist"),
        (["--videos", "/nonexistent/v"], {}, 3, "/nonexistent/v (from --videos) does not exist"),
        (["--name-template", "{nope}.mp4"], {}, 3, "--name-template '{nope}.mp4' does not work"),
        (["--name-template", "raw"], {}, 3, "only 0 of the 24 train clips (0%) are usable"),
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--lr", "-1"], {}, 3, ""),
    ],
)
def test_bad_input_stops_before_training(split, tmp_path, monkeypatch, args, env, code, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "run"
    result = train_cli(split[0], out, *args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert not (out / "checkpoint.pt").exists()


def test_bad_split_folders_exit_3(tmp_path):
    result = invoke("train", "--split", tmp_path / "none", "--backbone", "tiny")
    assert result.exit_code == 3 and "split folder" in result.stderr and "does not exist" in result.stderr
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "manifest.json").write_text('{"format": "other/1"}')
    result = invoke("train", "--split", tmp_path / "s", "--backbone", "tiny")
    assert result.exit_code == 3 and "format is 'other/1', expected 'hvuaudit-split/1'" in result.stderr


def test_no_videos_directory_names_all_three_ways(tmp_path):
    split_dir, _ = make_split(tmp_path, n_train=3, n_val=3)
    result = invoke("train", "--split", split_dir, *TINY_ARGS)
    assert result.exit_code == 3
    for way in ("--videos DIR", "HVUAUDIT_VIDEOS", "hvuaudit split --videos DIR"):
        assert way in result.stderr


def test_preflight_writes_the_missing_list_and_stops(split, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    # the pre-flight checks the clips that training reads: train and select (val is checked by eval)
    originals = sorted(p for p in split[1].iterdir() if p.name[0] in "ts")
    for p in originals[:20]:  # 20 of the 30
        (videos / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "run"
    result = train_cli(split[0], out, "--videos", videos)
    assert result.exit_code == 3 and "are usable" in result.stderr
    problems = (out / "preflight_problems.csv").read_text().splitlines()
    assert problems[0] == "set,clip_id,path,problem"
    assert all(line.endswith(",missing") for line in problems[1:])
    assert len(problems) - 1 == 30 - 20  # train + select rows without a file
    assert not (out / "checkpoint.pt").exists()


# --------------------------------------------------------------------------- skipped clips, divergence
def test_a_clip_failing_mid_training_is_skipped_and_counted(split, tmp_path, monkeypatch):
    videos = tmp_path / "videos"
    videos.mkdir()
    for p in split[1].iterdir():
        (videos / p.name).write_bytes(p.read_bytes())
    (videos / "tvid000_000000_000010.mp4").write_bytes(b"corrupt after the pre-flight")
    monkeypatch.setattr(trainer_videos, "probe_clip", lambda path: None)  # the pre-flight sees nothing wrong
    out = tmp_path / "run"
    result = train_cli(split[0], out, "--videos", videos, "--epochs", "1", "--method", "baseline")
    assert result.exit_code == 0, result.output
    assert read_metrics(out)[0]["train"]["skipped_clips"] == 1
    assert "1 clips skipped" in result.stderr


def test_literal_negative_weight_runs_away_and_is_logged(split, tmp_path):
    out = tmp_path / "neg"
    args = "--method amt-no-object --adversary negative --adv-schedule constant --lambda -1".split()
    result = train_cli(split[0], out, *args, "--lr", "0.5", "--lr-patience", "20", "--epochs", "4")
    assert result.exit_code == 0, result.output
    lines = read_metrics(out)
    assert lines[-1]["scene_loss_runaway"]
    assert lines[-1]["train"]["loss_scene"] > 10 * lines[0]["train"]["loss_scene"]
    assert "warning: the scene loss ran away" in result.stderr


def test_non_finite_loss_names_the_head_and_step():
    torch.manual_seed(0)
    model = build_model(ModelConfig("tiny", 3, 4, 5, 8, scene_head=True, object_head=False))
    with torch.no_grad():
        model.scene_head[-1].bias.fill_(float("nan"))
    batch = {
        "video": torch.zeros(2, 3, 8, 32, 32, dtype=torch.uint8),
        "action": torch.tensor([0, 1]),
        "scene": torch.ones(2, 4),
        "object": torch.zeros(2, 5),
        "index": torch.tensor([0, 1]),
        "n": 2,
        "skipped": 0,
    }
    objective = Objective(lambda_=-0.3, gamma=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mean, std = torch.zeros(3), torch.ones(3)
    with pytest.raises(DivergedError, match="the scene loss became nan at epoch 4, step 0"):
        train_one_epoch(model, objective, optimizer, [batch], torch.device("cpu"), 4, mean=mean, std=std)


# --------------------------------------------------------------------------- eval
def test_eval_writes_eval_json_and_features(amt_run):
    result = invoke("eval", amt_run, "--workers", "0", "--checkpoint", "last")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("set\tn\ttop1")
    doc = json.loads((amt_run / "eval.json").read_text())
    assert doc["checkpoint"] == "last" and set(doc["sets"]) == {"val", "uniform"}
    for name in ("val", "uniform"):
        assert SET_KEYS <= set(doc["sets"][name])
    val = doc["sets"]["val"]
    for key in ("top1", "top1_any", "top5", "mean_class_acc", "dcorr2", "dcorr2_u", "dcorr_n"):
        assert doc[key] == val[key]
    assert val["n"] == 12 and val["dcorr_n"] == 12 and set(val["per_class"]) == {"jump", "run", "swim"}
    assert val["seen_n"] + val["unseen_n"] == 12
    features = np.load(amt_run / "features.npz")
    # top-1 any, recounted from the predictions and the actions column of val.csv
    split_dir = Path(json.loads((amt_run / "config.json").read_text())["split_dir"])
    with open(split_dir / "val.csv") as fh:
        tags = {row["clip_id"]: row["actions"].split("|") for row in csv.DictReader(fh)}
    names = list(features["action_names"])
    right = [names[p] in tags[c] for p, c in zip(features["val_pred"], features["val_clip_id"], strict=True)]
    assert val["top1_any"] == pytest.approx(np.mean(right)) and val["top1_any"] >= val["top1"]
    assert features["val_features"].shape == (12, 32) and features["val_features"].dtype == np.float32
    assert features["uniform_clip_id"].shape == (6,) and list(features["sets"]) == ["val", "uniform"]
    assert features["val_action"].dtype == np.int64 and features["val_scene"][0] != ""
    assert val["dcorr_labels"] == "scene"
    assert 0.0 <= val["dcorr2"] <= 1.0 and val["dcorr2_u"] is not None  # measured by hvueval/dcorr.py
    # what produced the scores
    assert (doc["selection_set"], doc["selection_scored"], doc["backbone"]) == ("select", False, "tiny")
    assert doc["pretraining"] is None and doc["strict"] is False and doc["variant"] == "si2"
    # one evaluation path: eval scores select.csv as the last epoch's selection did
    args = ("--workers", "0", "--checkpoint", "last", "--sets", "select", "--format", "json")
    selected = invoke("eval", amt_run, *args)
    assert selected.exit_code == 0, selected.output
    top1 = json.loads(selected.stdout)["sets"]["select"]["top1"]
    assert top1 == pytest.approx(read_metrics(amt_run)[-1]["select"]["action_acc"])


def test_eval_json_output_and_errors(amt_run, tmp_path):
    result = invoke("eval", amt_run, "--workers", "0", "--sets", "uniform", "--format", "json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["sets"]) == {"uniform"}
    result = invoke("eval", tmp_path / "nothing")
    assert result.exit_code == 4 and "does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    result = invoke("eval", tmp_path / "empty")
    assert result.exit_code == 4 and "best.pt: missing" in result.stderr
    result = invoke("eval", amt_run, "--sets", "test", "--workers", "0")
    assert result.exit_code == 3 and "not an evaluation set" in result.stderr


def test_python_dash_m_trainer_runs_the_same_commands(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("HVUAUDIT_VIDEOS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "train", "--split", str(tmp_path / "none"), "--backbone", "tiny"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("error: split folder") and proc.stdout == ""


# --------------------------------------------------------------------------- damaged artefacts
@pytest.mark.parametrize("where", ["middle", "start", "end"])
def test_a_damaged_checkpoint_is_refused_by_eval_and_resume(amt_run, tmp_path, where):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(amt_run, run)
    for name in ("checkpoint.pt", "best.pt"):
        data = bytearray((run / name).read_bytes())
        at = {"middle": len(data) // 2, "start": 100, "end": len(data) - 500}[where]
        for k in range(400 if where != "end" else 300):
            data[at + k] ^= 0xFF
        (run / name).write_bytes(bytes(data))
    for args in (
        ["eval", run, "--workers", "0", "--checkpoint", "last"],
        ["eval", run, "--workers", "0"],
        ["train", "--out", run, "--resume"],
    ):
        result = invoke(*args)
        assert result.exit_code == 4, result.output
        assert "damaged" in result.stderr and str(run) in result.stderr
    assert (
        not (run / "eval.json").exists()
        or (run / "eval.json").read_bytes() == (amt_run / "eval.json").read_bytes()
    )


def test_a_damaged_metrics_file_is_mended_on_resume_and_kept_aside(split, tmp_path):
    run = tmp_path / "run"
    assert (
        train_cli(split[0], run, "--method", "baseline", "--epochs", "2", "--stop-after", "1").exit_code == 0
    )
    original = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").write_bytes(original + b'{"epoch": 2, "lr": 0.0\xff\n')  # a write cut short
    resumed = invoke("train", "--out", run, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "dropped 1 damaged line(s) (line 2)" in resumed.stderr
    assert [line["epoch"] for line in read_metrics(run)] == [1, 2]
    first_backup = (run / "metrics.jsonl.damaged-1").read_bytes()
    assert first_backup.startswith(original)
    (run / "metrics.jsonl").write_bytes((run / "metrics.jsonl").read_bytes() + b"garbage\n")
    assert invoke("train", "--out", run, "--resume").exit_code == 0  # a second repair keeps the first backup
    assert (run / "metrics.jsonl.damaged-1").read_bytes() == first_backup
    assert (run / "metrics.jsonl.damaged-2").read_bytes().endswith(b"garbage\n")
    assert invoke("plot", "curves", run, "-o", tmp_path / "curves.png").exit_code == 0


def test_an_eval_set_outside_the_split_folder_is_refused(tmp_path):
    split_dir, _videos = make_split(tmp_path / "s", n_train=3, n_val=3)
    secret = tmp_path / "elsewhere.csv"
    secret.write_text((split_dir / "val.csv").read_text())
    manifest = json.loads((split_dir / "manifest.json").read_text())
    for bad in ("../elsewhere.csv", str(secret), "sub/../../elsewhere.csv"):
        manifest["eval_sets"] = {"val": "val.csv", "leak": bad}
        (split_dir / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(splitfolder.SplitFolderError, match="outside the split folder"):
            splitfolder.load_split(split_dir)


def test_leftover_temporary_checkpoints_are_removed_at_the_next_save(split, tmp_path):
    from hvucontracts.files import TMP_TAG

    run = tmp_path / "run"
    run.mkdir()
    leftover = run / f".checkpoint.pt{TMP_TAG}killed"
    leftover.write_bytes(b"half a checkpoint")
    os.utime(leftover, (1, 1))  # left by a run killed long ago (a fresh one may be another process's write)
    assert train_cli(split[0], run, "--method", "baseline", "--epochs", "1").exit_code == 0
    assert not leftover.exists()
    assert not [p for p in run.iterdir() if TMP_TAG in p.name]


def test_train_never_replaces_run_files_it_did_not_write(split, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "config.json").write_text('{"my": "vscode"}')
    (project / "metrics.jsonl").write_text("mylog\n")
    for extra in ([], ["--force"]):
        result = train_cli(split[0], project, "--method", "baseline", "--epochs", "1", *extra)
        assert result.exit_code == 5, result.output
        assert "did not write" in result.stderr
    assert (project / "config.json").read_text() == '{"my": "vscode"}'
    assert (project / "metrics.jsonl").read_text() == "mylog\n"


def test_train_force_replaces_its_own_run_and_nothing_else(split, tmp_path):
    run = tmp_path / "run"
    assert train_cli(split[0], run, "--method", "baseline", "--epochs", "1").exit_code == 0
    (run / "notes.md").write_text("mine")
    assert train_cli(split[0], run, "--method", "baseline", "--epochs", "1").exit_code == 5
    again = train_cli(split[0], run, "--method", "baseline", "--epochs", "1", "--force")
    assert again.exit_code == 0, again.output
    assert (run / "notes.md").read_text() == "mine" and (run / "checkpoint.pt").is_file()


def test_train_out_that_is_a_file_is_a_message(split, tmp_path):
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("mine")
    result = train_cli(split[0], not_a_folder, "--epochs", "1")
    assert result.exit_code == 5 and "is not a folder" in result.stderr
    assert not_a_folder.read_text() == "mine"


# --------------------------------------------------------------------------- selection set
def _relabel_val(split_dir: Path) -> None:
    """Give every val.csv clip another action, scene and objects: the test pairs' labels, all changed."""
    path = split_dir / "val.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    actions = ["jump", "run", "swim"]
    for row in rows:
        row["action"] = actions[(actions.index(row["action"]) + 1) % 3]
        row["scene"] = row["scenes"] = "gym"
        row["objects"] = ""
    write_csv(path, rows)


def test_selection_never_reads_val_csv(tmp_path):
    """With select.csv, best.pt, the learning-rate history and the early stop are the same whatever val.csv
    says: the trainer selects on select.csv alone."""
    built, _ = make_split(tmp_path / "data", record_videos=True)
    relabelled = tmp_path / "relabelled"
    shutil.copytree(
        built, relabelled
    )  # the same clip files (the encoder's bytes vary from one write to the next)
    _relabel_val(relabelled)
    runs = {}
    for name, split_dir in (("as_built", built), ("relabelled", relabelled)):
        out = tmp_path / name
        # plateau with patience 0 and early stopping after 2: both read the selection set every epoch
        args = ("--epochs", "4", "--lr-patience", "0", "--patience", "2", "--lr", "0.05")
        result = train_cli(split_dir, out, "--method", "amt", *args)
        assert result.exit_code == 0, result.output
        assert "has no select.csv" not in result.stderr
        runs[name] = out
    lines = {name: read_metrics(out) for name, out in runs.items()}
    assert [(m["epoch"], m["lr"]) for m in lines["as_built"]] == [
        (m["epoch"], m["lr"]) for m in lines["relabelled"]
    ]
    assert [m["select"]["action_acc"] for m in lines["as_built"]] == [
        m["select"]["action_acc"] for m in lines["relabelled"]
    ]
    best = {name: torch.load(out / "best.pt", weights_only=False) for name, out in runs.items()}
    assert best["as_built"]["state"] == best["relabelled"]["state"]
    for key, tensor in best["as_built"]["model"].items():
        assert torch.equal(tensor, best["relabelled"]["model"][key]), key
    config = json.loads((runs["as_built"] / "config.json").read_text())
    assert config["selection_set"] == "select" and config["pretraining"] is None


def test_a_split_without_select_csv_selects_on_val_and_says_so(tmp_path):
    split_dir, _ = make_split(tmp_path, record_videos=True, n_select=0)
    out = tmp_path / "run"
    result = train_cli(split_dir, out, "--method", "baseline", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert f"warning: {split_dir.resolve()} has no select.csv, so best.pt" in result.stderr
    assert "action acc" in result.stderr and " val  " in result.stderr  # the epoch line names the set
    assert read_metrics(out)[0]["selection_set"] == "val"
    assert json.loads((out / "config.json").read_text())["selection_set"] == "val"
    evaluated = invoke("eval", out, "--workers", "0")
    assert evaluated.exit_code == 0, evaluated.output
    assert "was trained selecting on val, the test pairs" in evaluated.stderr
    assert "val chose this run's best.pt, learning-rate drops or early stop" in evaluated.stderr
    doc = json.loads((out / "eval.json").read_text())
    assert (doc["checkpoint"], doc["selection_set"], doc["selection_scored"]) == ("best", "val", True)


def test_eval_scores_a_checkpoint_file_and_records_its_path(amt_run, tmp_path):
    copy = tmp_path / "epoch2.pt"
    copy.write_bytes((amt_run / "checkpoint.pt").read_bytes())
    result = invoke(
        "eval", amt_run, "--workers", "0", "--checkpoint", copy, "--sets", "val", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["checkpoint"] == str(copy.resolve()) and doc["checkpoint_epoch"] == 2
    missing = invoke("eval", amt_run, "--checkpoint", tmp_path / "nope.pt")
    assert missing.exit_code == 3 and "not best, last or an existing checkpoint file" in missing.stderr


def test_eval_refuses_another_runs_checkpoint_and_knows_its_own_files(split, amt_run, tmp_path):
    other = tmp_path / "other"
    assert train_cli(split[0], other, "--method", "baseline", "--epochs", "1").exit_code == 0
    foreign = invoke("eval", other, "--workers", "0", "--checkpoint", amt_run / "best.pt")
    assert foreign.exit_code == 3 and "a checkpoint of another run" in foreign.stderr
    assert not (other / "eval.json").exists()
    # the run's own best.pt given as a path is `best`; scored on select, it is optimistic
    own = invoke(
        "eval",
        other,
        "--workers",
        "0",
        "--checkpoint",
        other / "best.pt",
        "--sets",
        "select",
        "--format",
        "json",
    )
    assert own.exit_code == 0, own.output
    doc = json.loads(own.stdout)
    assert (doc["checkpoint"], doc["selection_scored"]) == ("best", True)
    # the last epoch was steered by select too (a plateau schedule, early stopping)
    last = json.loads(
        invoke(
            "eval", other, "--workers", "0", "--checkpoint", "last", "--sets", "select", "--format", "json"
        ).stdout
    )
    assert last["selection_scored"] is True
    assert (
        "chose this run's best.pt, learning-rate drops or early stop"
        in invoke("eval", other, "--workers", "0", "--checkpoint", "last", "--sets", "select").stderr
    )
    unknown = invoke("eval", other, "--sets", "nope")
    assert unknown.exit_code == 3 and "choose from val, uniform, select" in unknown.stderr


def test_a_select_csv_the_manifest_does_not_name_is_said_so(tmp_path):
    split_dir, _ = make_split(tmp_path, n_select=6)
    manifest = json.loads((split_dir / "manifest.json").read_text())
    del manifest["select_set"]
    (split_dir / "manifest.json").write_text(json.dumps(manifest))
    warning = splitfolder.load_split(split_dir).selection_warning()
    assert warning is not None and "does not name its select.csv" in warning


def test_an_auto_run_resumes_with_nothing_but_resume(split, tmp_path):
    tasks = write_tasks(tmp_path / "both.json", obj="adversarial")  # no named method has these roles
    out = tmp_path / "auto"
    first = train_cli(split[0], out, "--tasks", tasks, "--epochs", "2", "--stop-after", "1")
    assert first.exit_code == 0, first.output
    resumed = invoke("train", "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    config = json.loads((out / "config.json").read_text())
    assert config["tasks"] == {"action": "learn", "scene": "adversarial", "object": "adversarial"}
    assert [line["epoch"] for line in read_metrics(out)] == [1, 2]


def test_a_recipe_from_the_command_line_with_an_option_over_it(split, tmp_path):
    out = tmp_path / "demo_recipe"
    result = invoke(
        "train", "--split", split[0], "--out", out, "--recipe", "cpu-demo", "--epochs", "1",
        "--batch-size", "8", "--method", "baseline", "--head-hidden", "16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "cpu-demo" and (config["epochs"], config["batch_size"]) == (1, 8)
    assert (config["backbone"], config["optimizer"], config["schedule"], config["hflip"]) == (
        "tiny", "adam", "onecycle", False
    )  # fmt: skip
    refused = invoke("train", "--split", split[0], "--out", tmp_path / "p", "--recipe", "paper-r18")
    assert refused.exit_code == 3 and "pass --pretrained r3d18_K_200ep.pth" in refused.stderr
    unknown = invoke("train", "--split", split[0], "--recipe", "paper-r34")
    assert unknown.exit_code == 2 and "'paper-r18', 'paper-r50', 'cpu-demo'" in unknown.output


def test_any_of_accuracy_counts_another_true_action():
    from hvueval.evaluate import any_of_accuracy, topk_accuracy

    # three clips; clip 0's primary is 0 but it is also tagged 2, and the head names 2
    logits = np.array([[0.1, 0.0, 0.9], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    primary = np.array([0, 0, 2])
    tags = [np.array([0, 2]), np.array([0]), np.array([2])]
    assert topk_accuracy(logits, primary, 1) == pytest.approx(1 / 3)
    assert any_of_accuracy(logits, tags) == pytest.approx(2 / 3)
    assert any_of_accuracy(logits[:0], []) is None


def test_a_split_csv_without_the_actions_column_reads_the_primary_action(tmp_path):
    split_dir, videos = make_split(tmp_path)
    rows = list(csv.DictReader(open(split_dir / "val.csv")))
    with open(split_dir / "val.csv", "w", newline="") as fh:  # as a folder from before the column
        writer = csv.DictWriter(fh, fieldnames=splitfolder.COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    folder = splitfolder.load_split(split_dir)
    assert folder.sets["val"]["actions"].to_list() == folder.sets["val"]["action"].to_list()
    table = trainer_videos.build_table(folder.sets["train"], folder.labels, videos, "mmaction")
    assert [len(t) for t in table.action_idx[:4]] == [2, 1, 1, 1]  # train.csv keeps its second tags
    assert table.action_idx[0].tolist() == sorted({int(table.action[0]), (int(table.action[0]) + 1) % 3})


# --------------------------------------------------------------------------- run.toml
def test_a_run_file_sets_options_the_command_line_overrides_and_config_json_records(split, tmp_path):
    run_file = tmp_path / "run.toml"
    run_file.write_text(
        f'split = "{split[0]}"\n'
        "method = 'baseline'\n"
        "epochs = 3\n"
        "warmup_epochs = 1\n"  # either spelling of an option
        "momentum = 1\n"  # a whole number for a float setting
        "hflip = false\n"
        'recipe = "cpu-demo"\n'  # the file's other keys win over the recipe
        "batch-size = 4\n"
    )
    out = tmp_path / "run"
    args = ["--clip-len", "8", "--size", "32", "--head-hidden", "16", "--epochs", "2"]
    result = invoke("train", "--config", run_file, "--out", out, *args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["config_file"] == str(run_file.resolve()) and config["recipe"] == "cpu-demo"
    assert (config["method"], config["warmup_epochs"], config["hflip"]) == ("baseline", 1, False)
    assert config["momentum"] == 1.0 and config["batch_size"] == 4  # the file over the recipe's 64
    assert config["epochs"] == 2 and config["backbone"] == "tiny"  # the command line over the file
    assert config["optimizer"] == "adam"  # the recipe's, which neither the file nor the line set


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epoch = 3", "unknown key 'epoch'; did you mean 'epochs'?"),
        ("lamda = -0.3", "unknown key 'lamda'; did you mean 'lambda'?"),
        ('epochs = "3"', "'epochs' must be an integer, got '3'"),
        ("hflip = 1", "'hflip' must be true or false, got 1"),
        ("resume = true", "'resume' is an action of one call"),
        ("[train]\nepochs = 3", "[train] is a table"),
        ("epochs = ", "not valid TOML"),
    ],
)
def test_a_bad_run_file_is_refused_before_anything_is_written(split, tmp_path, text, message):
    run_file = tmp_path / "run.toml"
    run_file.write_text(text + "\n")
    out = tmp_path / "run"
    result = invoke("train", "--split", split[0], "--config", run_file, "--out", out, *TINY_ARGS)
    assert result.exit_code == 3 and message in result.stderr, result.output
    assert str(run_file) in result.stderr and not out.exists()


def test_the_run_file_example_of_the_docs_reads_and_resolves(tmp_path):
    from trainer.config import read_config_file, resolve_config, with_recipe

    text = (ROOT / "docs" / "trainer.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "run.toml").write_text(example)
    settings = read_config_file(tmp_path / "run.toml")
    assert settings["split_dir"] == "out/si2" and settings["lambda_"] == -0.3
    assert settings["warmup_epochs"] == 2 and settings["recipe"] == "paper-r18"
    recipe = settings.pop("recipe")
    cfg = resolve_config(with_recipe(recipe, **settings))
    assert (cfg.backbone, cfg.head_loss_reduction, cfg.warmup_epochs) == ("r3d18h", "sum", 2)


# --------------------------------------------------------------------------- tensorboard
def _event_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder)).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events_hold_the_metrics_lines(split, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    args = ("--method", "amt", "--epochs", "3", "--tensorboard")
    assert train_cli(split[0], out, *args, "--stop-after", "2").exit_code == 0
    # epoch 3 of an earlier attempt, then a resume from epoch 2's checkpoint: its events are replaced
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert invoke("train", "--out", out, "--resume").exit_code == 0
    torch.save(checkpoint, out / "checkpoint.pt")  # back to epoch 2, as after a crash
    assert invoke("train", "--out", out, "--resume").exit_code == 0
    scalars = _event_scalars(out / "tensorboard")
    lines = read_metrics(out)
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3]  # epoch 3 once, not twice
    for tag, key in (("train/loss", ("train", "loss")), ("select/action_acc", ("select", "action_acc"))):
        assert [value for _, value in scalars[tag]] == pytest.approx([line[key[0]][key[1]] for line in lines])
    assert [value for _, value in scalars["lr"]] == pytest.approx([line["lr"] for line in lines])
    # --force replaces the event files of the run, and nothing else in its folder
    (out / "tensorboard" / "notes.txt").write_text("mine")
    assert (
        train_cli(split[0], out, "--method", "amt", "--epochs", "1", "--tensorboard", "--force").exit_code
        == 0
    )
    assert [step for step, _ in _event_scalars(out / "tensorboard")["train/loss"]] == [1]
    assert (out / "tensorboard" / "notes.txt").read_text() == "mine"


def test_tensorboard_without_the_package_is_refused_with_the_install_command(split, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith(("tensorboard", "torch.utils.tensorboard")):
            raise ModuleNotFoundError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    out = tmp_path / "run"
    result = train_cli(split[0], out, "--tensorboard")
    assert result.exit_code == 3 and "pip install 'hvuaudit[tensorboard]'" in result.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- tune
def _tune(split_dir: Path, out: Path, *args: str):
    grid = ("--grid", "lambda=0.1,1", "--grid", "gamma=0.3")
    return invoke("tune", "--split", split_dir, "--out", out, *TINY_ARGS, "--epochs", "2", *grid, *args)


def test_tune_chooses_on_the_selection_set_and_never_on_val(tmp_path):
    split_dir, _ = make_split(tmp_path / "data", record_videos=True)
    first = _tune(split_dir, tmp_path / "tune")
    assert first.exit_code == 0, first.output
    doc = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert doc["selection_set"] == "select" and [p["name"] for p in doc["points"]] == [
        "lambda=0.1_gamma=0.3",
        "lambda=1_gamma=0.3",
    ]
    for point in doc["points"]:  # λ signed by the adversarial scene role, γ by the auxiliary object
        assert point["params"] == {"lambda": -abs(point["params"]["lambda"]), "gamma": 0.3}
        lines = read_metrics(Path(point["run"]))
        best = max(line["select"]["action_acc"] for line in lines)
        assert point["selection_acc"] == pytest.approx(best)  # best.pt's score on select.csv
        at_best = lines[point["best_epoch"] - 1]["select"]
        assert at_best["action_acc"] == best and point["selection_loss"] == pytest.approx(
            at_best["loss_action"]
        )
    scores = [p["selection_acc"] for p in doc["points"]]
    # the best accuracy; equal accuracies are told apart by the lower action loss on select.csv
    ranked = max(doc["points"], key=lambda p: (p["selection_acc"], -p["selection_loss"]))
    assert doc["chosen"]["name"] == ranked["name"]
    assert "chosen:" in first.stderr and first.stdout.splitlines()[0].startswith("lambda\tgamma\tselect_top1")
    # every val.csv label changed (an action swapped for another): the same scores, the same choice
    rows = list(csv.DictReader(open(split_dir / "val.csv")))
    names = ["jump", "run", "swim"]
    for row in rows:
        row["action"] = row["actions"] = names[(names.index(row["action"]) + 1) % 3]
    write_csv(split_dir / "val.csv", rows)
    second = _tune(split_dir, tmp_path / "tune_wrong_val")
    assert second.exit_code == 0, second.output
    again = json.loads((tmp_path / "tune_wrong_val" / "tune.json").read_text())
    assert [p["selection_acc"] for p in again["points"]] == scores and again["chosen"] == doc["chosen"]
    # the points in two processes at once: the same runs as one after the other
    parallel = _tune(split_dir, tmp_path / "tune_jobs", "--jobs", "2")
    assert parallel.exit_code == 0, parallel.output
    in_parallel = json.loads((tmp_path / "tune_jobs" / "tune.json").read_text())
    assert [p["selection_acc"] for p in in_parallel["points"]] == scores and in_parallel["jobs"] == 2
    # a rerun reuses the finished points: nothing is trained again
    stamps = {p["name"]: (Path(p["run"]) / "checkpoint.pt").stat().st_mtime_ns for p in doc["points"]}
    rerun = _tune(split_dir, tmp_path / "tune")
    assert rerun.exit_code == 0, rerun.output
    assert stamps == {p["name"]: (Path(p["run"]) / "checkpoint.pt").stat().st_mtime_ns for p in doc["points"]}
    # chosen.toml hands the values to train
    from trainer.config import read_config_file

    chosen = read_config_file(tmp_path / "tune" / "chosen.toml")
    assert (chosen["lambda_"], chosen["gamma"]) == (doc["chosen"]["params"]["lambda"], 0.3)
    assert chosen["split_dir"] == str(split_dir.resolve()) and "out" not in chosen
    trained = invoke(
        "train", "--config", tmp_path / "tune" / "chosen.toml", "--out", tmp_path / "final", "--epochs", "1"
    )
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "final" / "config.json").read_text())["lambda"] == chosen["lambda_"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--grid", "lamda=0.1"), "not an option of train; did you mean 'lambda'?"),
        (("--grid", "lambda=0.1,x"), "'x' is not a number"),
        (("--grid", "workers=0,1"), "workers cannot be tuned"),
        (("--grid", "lambda=0.1", "--lambda", "-0.3"), "--grid lambda and its option are both given"),
        (("--grid", "gamma=0.3", "--method", "amt-no-object"), "trains no object head"),
        ((), "tune needs at least one --grid"),
    ],
)
def test_tune_refuses_a_bad_grid(split, tmp_path, args, message):
    result = invoke("tune", "--split", split[0], "--out", tmp_path / "t", *TINY_ARGS, *args)
    assert result.exit_code == 3 and message in result.stderr, result.output
    assert not (tmp_path / "t").exists()


def test_tune_without_a_selection_set_is_refused(tmp_path):
    split_dir, _ = make_split(tmp_path / "data", n_select=0)
    result = _tune(split_dir, tmp_path / "tune")
    assert result.exit_code == 3 and "has no selection set (select.csv)" in result.stderr
    assert not (tmp_path / "tune").exists()


def test_tune_plans_signed_weights_and_an_object_head_for_mtl(split, tmp_path):
    from trainer.config import TrainConfig, resolve_config
    from trainer.tune import parse_grid, plan

    base = TrainConfig(split_dir=str(split[0]), backbone="tiny", method="mtl")
    points = plan(base, parse_grid(["lambda=0.3,1", "gamma=0.5"]), tmp_path / "t")
    assert [name for name, _, _ in points] == ["lambda=0.3_gamma=0.5", "lambda=1_gamma=0.5"]
    for _, params, cfg in points:
        resolved = resolve_config(cfg)  # MTL learns the scene; a gamma adds an auxiliary object head
        assert (resolved.scene_role, resolved.object_role) == ("auxiliary", "auxiliary")
        assert resolved.lambda_ == params["lambda_"] > 0 and resolved.gamma == 0.5
        assert resolved.out == str(tmp_path / "t" / "points" / f"lambda={params['lambda_']:g}_gamma=0.5")


def test_tune_trains_a_point_once_when_an_axis_does_nothing_there(split, tmp_path):
    from trainer.config import TrainConfig, resolve_config, unused_settings
    from trainer.tune import parse_grid, plan

    base = TrainConfig(split_dir=str(split[0]), backbone="tiny", method="amt")
    points = plan(base, parse_grid(["adversary=grl,ensemble", "adversary-heads=2,4"]), tmp_path / "t")
    # GRL has one head whatever --adversary-heads says: one GRL point, not two runs of the same thing
    assert [name for name, _, _ in points] == [
        "adversary=grl_adversary-heads=2",
        "adversary=ensemble_adversary-heads=2",
        "adversary=ensemble_adversary-heads=4",
    ]
    assert [resolve_config(cfg).adversary_heads for _, _, cfg in points[1:]] == [2, 4]
    # an axis inert for some of its values only: a point keeps the value it was given, never the default
    ensemble = replace(base, adversary="ensemble")
    points = plan(ensemble, parse_grid(["epochs=3,10", "reinit-every=4,5"]), tmp_path / "t")
    assert [name for name, _, _ in points] == [
        "epochs=3_reinit-every=4",  # with 3 epochs, 4 and 5 both re-draw nothing: one run
        "epochs=10_reinit-every=4",
        "epochs=10_reinit-every=5",
    ]
    short = resolve_config(points[0][2])
    assert short.reinit_every == 4 and "reinit_every" in unused_settings(short)  # not the default 2
    points = plan(replace(ensemble, epochs=3), parse_grid(["reinit-every=1,5"]), tmp_path / "t")
    assert [(name, cfg.out) for name, _, cfg in points] == [
        ("reinit-every=1", str(tmp_path / "t" / "points" / "reinit-every=1")),
        ("reinit-every=5", str(tmp_path / "t" / "points" / "reinit-every=5")),
    ]
    # a value listed twice is still a mistake, also next to an axis left out at that point
    with pytest.raises(ConfigError, match="are the same point"):
        plan(base, parse_grid(["gamma=1,-1", "adversary-heads=2,4"]), tmp_path / "t")
    with pytest.raises(ConfigError, match="every point would train the same run: only --adversary ensemble"):
        plan(base, parse_grid(["adversary-heads=2,4"]), tmp_path / "t")


def test_tune_never_replaces_a_tune_json_it_did_not_write(tmp_path):
    split_dir, _ = make_split(tmp_path / "data", record_videos=True)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "tune.json").write_text('{"my": "notes"}')
    result = _tune(split_dir, out)
    assert result.exit_code == 5 and "hvuaudit tune did not write" in result.stderr
    assert (out / "tune.json").read_text() == '{"my": "notes"}' and not (out / "points").exists()


def test_the_commands_of_reproducing_the_paper_use_options_that_exist():
    import re
    import shlex

    from hvuaudit.cli import cli as group

    text = (ROOT / "docs" / "trainer.md").read_text()
    block = text.split("## Reproducing the paper", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    commands = [m.group(0) for line in lines for m in re.finditer(r"hvuaudit [^;#]*", line)]
    assert len(commands) >= 12
    seen = set()
    for line in commands:
        words = shlex.split(re.sub(r"\$\{?(\w+)\}?", "x", line))[1:]
        command, ctx = group, None
        # `nca roles`, `videos scan`; `split` is a group that runs itself with options
        while isinstance(command, click.Group) and not words[0].startswith("-"):
            ctx = click.Context(command)
            command = command.get_command(ctx, words.pop(0))
            assert command is not None, line
        params = command.get_params(click.Context(command))  # a lazily loaded command's, too
        options = {opt for param in params for opt in param.opts + param.secondary_opts}
        for word in words:
            if word.startswith("-"):
                assert word.split("=")[0] in options, f"{line}: {word} is not an option of {command.name}"
        seen.add(command.name)
    assert {"ingest", "scan", "roles", "split", "tune", "train", "eval", "report"} <= seen


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (("--grid", "gamma=1,-1"), "are the same point (lambda"),  # magnitudes: one folder, refused
        (("--grid", "lr=0.01,0.1", "--optimizer", "adam", "--schedule", "onecycle", "--max-lr", "0.003"),
         "every point would train the same run: --schedule onecycle with --max-lr"),
        (("--grid", "seed=0,1"), "seed cannot be tuned: choosing a seed on the selection set"),
    ],
)  # fmt: skip
def test_tune_refuses_points_that_share_a_folder_or_a_run(tmp_path, grid, message):
    split_dir, _ = make_split(tmp_path / "data", record_videos=True)
    args = ["--split", split_dir, "--out", tmp_path / "t", *TINY_ARGS, "--grid", "lambda=0.3", *grid]
    result = invoke("tune", *args)
    assert result.exit_code == 3 and message in result.stderr, result.output
    assert not (tmp_path / "t").exists()


def test_tune_leaves_other_hvuaudit_folders_and_other_lengths_alone(amt_run, tmp_path):
    split_dir = Path(json.loads((amt_run / "config.json").read_text())["split_dir"])
    marker = (amt_run / ".hvuaudit-owned.json").read_text()
    into_a_run = _tune(split_dir, amt_run)
    assert into_a_run.exit_code == 5 and "is a run folder of hvuaudit" in into_a_run.stderr
    assert (amt_run / ".hvuaudit-owned.json").read_text() == marker and not (amt_run / "points").exists()
    assert invoke("tune", "--split", split_dir, "--out", tmp_path / "t", *TINY_ARGS, "--epochs", "1",
                  "--grid", "lambda=0.3").exit_code == 0  # fmt: skip
    longer = invoke("tune", "--split", split_dir, "--out", tmp_path / "t", *TINY_ARGS, "--epochs", "2",
                    "--grid", "lambda=0.3")  # fmt: skip
    assert longer.exit_code == 3 and "was trained with --epochs 1, this call asks for 2" in longer.stderr


def test_chosen_toml_holds_what_was_given_with_absolute_paths(tmp_path, monkeypatch):
    from trainer.config import read_config_file

    split_dir, _ = make_split(tmp_path / "data", record_videos=True)
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(split_dir, tmp_path)
    result = invoke(
        "tune", "--split", relative, "--out", "t", *TINY_ARGS, "--epochs", "1", "--grid", "lambda=0.3"
    )
    assert result.exit_code == 0, result.output
    chosen = read_config_file(tmp_path / "t" / "chosen.toml")
    assert chosen["split_dir"] == str(split_dir.resolve()) and chosen["lambda_"] == -0.3
    assert "lr" not in chosen and "weight_decay" not in chosen  # derived: they stay derived
    assert chosen["backbone"] == "tiny" and chosen["epochs"] == 1
    monkeypatch.chdir(ROOT)  # from anywhere, with another optimizer: its own defaults
    trained = invoke("train", "--config", tmp_path / "t" / "chosen.toml", "--optimizer", "adam",
                     "--out", tmp_path / "adam")  # fmt: skip
    assert trained.exit_code == 0, trained.output
    config = json.loads((tmp_path / "adam" / "config.json").read_text())
    assert (config["lr"], config["weight_decay"]) == (1e-3, 0.0)


def test_a_refused_value_of_a_run_file_is_named_as_the_files(split, tmp_path):
    for text, message in (
        ('recipe = "nope"\n', "run.toml: unknown recipe 'nope'; choose one of: paper-r18"),
        ('schedule = "bogus"\n', "run.toml: 'schedule' = 'bogus' in the run file: --schedule 'bogus'"),
    ):
        (tmp_path / "run.toml").write_text(text)
        run_file, out = tmp_path / "run.toml", tmp_path / "r"
        result = invoke("train", "--split", split[0], "--config", run_file, "--out", out, *TINY_ARGS)
        assert result.exit_code == 3 and message in result.stderr, result.output


def test_tensorboard_is_optional_on_resume_and_force_never_empties_a_linked_folder(split, tmp_path):
    pytest.importorskip("tensorboard")
    out, theirs = tmp_path / "run", tmp_path / "theirs"
    assert train_cli(split[0], out, "--tensorboard", "--stop-after", "1").exit_code == 0
    resumed = invoke("train", "--out", out, "--resume", "--no-tensorboard")
    assert resumed.exit_code == 0, resumed.output
    assert len(_event_scalars(out / "tensorboard")["train/loss"]) == 1  # epoch 2 wrote no events
    theirs.mkdir()
    (theirs / "events.out.tfevents.1.theirs").write_text("their events")
    shutil.rmtree(out / "tensorboard")
    (out / "tensorboard").symlink_to(theirs)
    assert train_cli(split[0], out, "--force").exit_code == 0
    assert (theirs / "events.out.tfevents.1.theirs").read_text() == "their events"


@pytest.mark.parametrize("adversary", ["dcorr", "cdcorr"])
def test_the_dcorr_adversary_trains_logs_its_penalty_and_resumes_exactly(split, tmp_path, adversary):
    args = ("--method", "amt-no-object", "--adversary", adversary, "--lambda", "-1", "--epochs", "2")
    args += ("--batch-size", "16") if adversary == "cdcorr" else ()
    once, twice = tmp_path / "once", tmp_path / "twice"
    first = train_cli(split[0], once, *args)
    assert first.exit_code == 0
    assert train_cli(split[0], twice, *args, "--stop-after", "1").exit_code == 0
    assert invoke("train", "--out", twice, "--resume").exit_code == 0
    a, b = (torch.load(run / "checkpoint.pt", weights_only=True)["model"] for run in (once, twice))
    assert all(torch.equal(a[key], b[key]) for key in a)
    lines = read_metrics(once)
    for line in lines:  # the penalty is measured on train and on the selection set, a U-statistic
        assert -1 < line["train"]["loss_scene_dcorr2"] < 1 and line["select"]["loss_scene_dcorr2"] is not None
    assert json.loads((once / "config.json").read_text())["adversary"] == adversary
    coverage = lines[0]["train"].get("scene_dcorr2_coverage")
    if adversary == "cdcorr":  # 3 actions in batches of 16: some action always has 4 clips or more
        assert 0 < coverage <= 1 and lines[0]["select"]["scene_dcorr2_coverage"] is not None
        assert ("warning: --adversary cdcorr saw" in first.stderr) == (coverage < 0.5)
    else:
        assert coverage is None


def test_the_ensemble_adversary_reinitialises_on_schedule_and_resumes_exactly(split, tmp_path):
    args = "--method amt-no-object --adversary ensemble --adversary-heads 2 --reinit-every 1 --epochs 3"
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert train_cli(split[0], once, *args.split()).exit_code == 0
    assert train_cli(split[0], twice, *args.split(), "--stop-after", "1").exit_code == 0
    assert invoke("train", "--out", twice, "--resume").exit_code == 0  # resumes into a re-initialisation
    a, b = (torch.load(run / "checkpoint.pt", weights_only=True) for run in (once, twice))
    assert all(torch.equal(a["model"][key], b["model"][key]) for key in a["model"])
    assert a["model_config"]["scene_copies"] == 2 and any(
        k.startswith("scene_head_copies.0.") for k in a["model"]
    )
    assert [line.get("reinitialised") for line in read_metrics(once)] == [None, {"scene": 0}, {"scene": 1}]
    config = json.loads((once / "config.json").read_text())
    assert (config["adversary"], config["adversary_heads"], config["reinit_every"]) == ("ensemble", 2, 1)
