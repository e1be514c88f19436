"""`hvuaudit train` / `hvuaudit eval` end to end on tiny mp4 clips (CPU, one thread, 1-2 epochs)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvucontracts import splitfolder
from tests.trainer_fixtures import TINY_ARGS, make_split, write_csv, write_tasks
from trainer import videos as trainer_videos
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
    for key in ("top1", "top5", "mean_class_acc", "dcorr2", "dcorr2_u", "dcorr_n"):
        assert doc[key] == val[key]
    assert val["n"] == 12 and val["dcorr_n"] == 12 and set(val["per_class"]) == {"jump", "run", "swim"}
    assert val["seen_n"] + val["unseen_n"] == 12
    features = np.load(amt_run / "features.npz")
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
