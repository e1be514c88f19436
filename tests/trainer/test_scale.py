"""The trainer at scale, on CPU: Hara et al.'s 3D-ResNets and their checkpoints, bf16 autocast, torchrun/DDP.

The GPU-only paths (NCCL, SyncBatchNorm, fp16 with a gradient scaler on CUDA,
torch.compile on CUDA) are checked by bench/gpu_check.py on a machine with a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hvuaudit.cli import cli
from tests.trainer_fixtures import TINY_ARGS, make_split
from trainer.backbones import BACKBONES, HARA_KINETICS_MEAN, HARA_KINETICS_STD, KINETICS_MEAN
from trainer.engine import train_one_epoch
from trainer.losses import Objective
from trainer.models import (
    ModelConfig,
    PretrainedError,
    build_backbone,
    build_model,
    load_pretrained,
)

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
HARA_CLASSES = 700


def _model_config(backbone: str, **kw) -> ModelConfig:
    base = dict(
        backbone=backbone,
        n_actions=3,
        n_scenes=4,
        n_objects=5,
        head_hidden=16,
        scene_head=True,
        object_head=True,
    )
    return ModelConfig(**{**base, **kw})


def save_hara_checkpoint(path: Path, backbone: str, *, prefix: str = "", seed: int = 0) -> dict:
    """A checkpoint laid out as Hara et al.'s main.py saves it; returns the backbone's state dict.

    ``{"epoch", "arch", "state_dict", "optimizer", "scheduler"}`` with a 700-class
    ``fc`` (Kinetics-700); their MultiStepLR scheduler state holds a Counter.
    """
    torch.manual_seed(seed)
    network = build_backbone(backbone)
    state = {f"{prefix}{k}": v for k, v in network.state_dict().items()}
    dim = BACKBONES[backbone].feature_dim
    state[f"{prefix}fc.weight"] = torch.randn(HARA_CLASSES, dim)
    state[f"{prefix}fc.bias"] = torch.randn(HARA_CLASSES)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[50, 100, 150])
    depth = BACKBONES[backbone].hara_depth
    torch.save(
        {
            "epoch": 200,
            "arch": f"resnet-{depth}",
            "state_dict": state,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        },
        path,
    )
    return network.state_dict()


@pytest.fixture(scope="module")
def r3d10_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hara") / "r3d10_K_200ep.pth"
    save_hara_checkpoint(path, "r3d10", prefix="module.")
    yield path
    path.unlink()  # 58 MB


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Path, Path]:
    return make_split(tmp_path_factory.mktemp("scale"), record_videos=True)


# --------------------------------------------------------------------------- Hara et al.'s 3D-ResNets
def test_r3d50_and_r3d18h_have_the_authors_layout():
    r3d50, r3d18h = build_backbone("r3d50"), build_backbone("r3d18h")
    shapes50 = {k: tuple(v.shape) for k, v in r3d50.state_dict().items()}
    assert r3d50.conv1.stride == (1, 2, 2) and shapes50["conv1.weight"] == (64, 3, 7, 7, 7)
    assert [len(getattr(r3d50, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert shapes50["layer1.0.conv1.weight"] == (64, 64, 1, 1, 1)  # Bottleneck: 1×1×1, 3×3×3, 1×1×1
    assert shapes50["layer1.0.conv2.weight"] == (64, 64, 3, 3, 3)
    assert shapes50["layer1.0.conv3.weight"] == (256, 64, 1, 1, 1)
    assert shapes50["layer1.0.downsample.0.weight"] == (256, 64, 1, 1, 1)  # type B shortcut
    assert shapes50["layer4.2.bn3.running_var"] == (2048,)
    assert not any(k.startswith("fc.") for k in shapes50)  # the action head replaces the classifier
    shapes18 = {k: tuple(v.shape) for k, v in r3d18h.state_dict().items()}
    assert [len(getattr(r3d18h, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    assert shapes18["conv1.weight"] == (64, 3, 7, 7, 7)
    assert "layer1.0.downsample.0.weight" not in shapes18  # BasicBlock, same width: identity
    assert shapes18["layer2.0.downsample.0.weight"] == (128, 64, 1, 1, 1)
    assert shapes18["layer4.1.conv2.weight"] == (512, 512, 3, 3, 3)
    with torch.no_grad():
        assert r3d50.eval()(torch.randn(1, 3, 16, 32, 32)).shape == (1, 2048)
        assert r3d18h.eval()(torch.randn(1, 3, 16, 32, 32)).shape == (1, 512)
    assert BACKBONES["r3d50"].feature_dim == 2048 and BACKBONES["r3d18h"].feature_dim == 512
    # each backbone carries the statistics its checkpoints were trained with
    assert BACKBONES["r3d50"].mean == HARA_KINETICS_MEAN and BACKBONES["r3d50"].std == HARA_KINETICS_STD
    assert BACKBONES["r3d18"].mean == KINETICS_MEAN


@pytest.mark.parametrize("layout", ["hara", "bare"])
def test_a_hara_checkpoint_loads_with_its_classifier_replaced(tmp_path, layout):
    path = tmp_path / "r3d50_K_200ep.pth"
    if layout == "hara":
        expected = save_hara_checkpoint(path, "r3d50", seed=1)
    else:  # a bare state dict saved from DataParallel
        torch.manual_seed(1)
        expected = build_backbone("r3d50").state_dict()
        torch.save({f"module.{k}": v for k, v in expected.items()}, path)
    torch.manual_seed(2)
    model = build_model(_model_config("r3d50"))
    report = load_pretrained(model, str(path))
    path.unlink()  # 190 MB
    assert len(report.loaded) == len(expected) and report.missing == ()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert model.action_head.weight.shape == (3, 2048)
    if layout == "hara":
        assert report.classifier_classes == HARA_CLASSES and report.arch == "resnet-50"
        assert report.unexpected == ("fc.weight", "fc.bias")
        assert "its 700-class classifier was replaced by the action head" in report.summary()
    else:
        assert report.classifier_classes is None and report.unexpected == ()


def test_pretrained_through_the_cli_prints_what_it_loaded(split, r3d10_checkpoint, tmp_path):
    out = tmp_path / "run"
    args = ["--backbone", "r3d10", "--pretrained", r3d10_checkpoint, "--clip-len", "4", "--epochs", "1"]
    result = CliRunner().invoke(
        cli, [str(a) for a in ["train", "--split", split[0], "--out", out, *TINY_ARGS, *args]]
    )
    assert result.exit_code == 0, result.output
    assert f"loaded 72 backbone tensors from {r3d10_checkpoint} (arch resnet-10)" in result.stderr
    assert "its 700-class classifier was replaced by the action head" in result.stderr
    assert "missing: none" in result.stderr and "unexpected (left out): fc.weight, fc.bias" in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["backbone"] == "r3d10"
    # the starting weights are named by content, so a moved or replaced file cannot pass for them
    digest = hashlib.sha256(Path(r3d10_checkpoint).read_bytes()).hexdigest()
    assert config["pretraining"] == {"source": str(Path(r3d10_checkpoint).resolve()), "sha256": digest}


def test_a_checkpoint_of_another_depth_is_refused(split, r3d10_checkpoint, tmp_path):
    out = tmp_path / "run"
    args = ["--backbone", "r3d18h", "--pretrained", r3d10_checkpoint, "--epochs", "1"]
    result = CliRunner().invoke(
        cli, [str(a) for a in ["train", "--split", split[0], "--out", out, *TINY_ARGS, *args]]
    )
    assert result.exit_code == 3
    assert (
        "the checkpoint lacks layer1.1.conv1.weight (64, 64, 3, 3, 3), which backbone r3d18h needs; "
        "it is a checkpoint of --backbone r3d10 (its arch entry says 'resnet-10')"
    ) in result.stderr
    assert not out.exists()  # refused before the run folder was made
    with pytest.raises(PretrainedError) as err:  # a BasicBlock checkpoint into a Bottleneck backbone
        load_pretrained(build_model(_model_config("r3d50")), str(r3d10_checkpoint))
    assert (
        "layer1.0.conv1.weight has shape (64, 64, 3, 3, 3) but backbone r3d50 needs (64, 64, 1, 1, 1)"
        in str(err.value)
    )


# --------------------------------------------------------------------------- mixed precision
def test_bf16_autocast_trains_a_hara_backbone_on_cpu():
    """A smoke test (finite values, dtypes), not a determinism test, which is why --amp auto is off on CPU.

    48 frames keep every convolution at least as long in time as its kernel (48, 24, 24, 12, 6, 3
    frames through the stages): torch 2.14's oneDNN bf16 weight gradient of a Conv3d whose kernel is
    longer than its input in time is non-deterministic (3×3×3 on 2 frames) or corrupts the heap
    (7×7×7 on 4 frames), see docs/trainer.md.
    """
    torch.manual_seed(0)
    model = build_model(_model_config("r3d10"))
    video = torch.randint(0, 256, (2, 3, 48, 32, 32), dtype=torch.uint8)
    conv_dtypes = []
    model.backbone.conv1.register_forward_hook(lambda module, args, output: conv_dtypes.append(output.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(((video.float() / 255) - 0.45) / 0.27, {"scene": 0.3, "object": None})
    assert conv_dtypes == [torch.bfloat16]  # the 3D convolutions run in bf16
    assert out["action"].dtype == out["scene"].dtype == torch.bfloat16
    batch = {
        "video": video,
        "action": torch.tensor([0, 2]),
        "scene": torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]]),
        "object": torch.tensor([[1.0, 0, 0, 0, 1], [0, 0, 1, 0, 0]]),
        "index": torch.tensor([0, 1]),
        "n": 2,
        "skipped": 0,
    }
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    metrics = train_one_epoch(
        model,
        Objective(lambda_=-0.3, gamma=1.0),
        optimizer,
        [batch],
        torch.device("cpu"),
        1,
        mean=torch.tensor(HARA_KINETICS_MEAN),
        std=torch.tensor(HARA_KINETICS_STD),
        amp_dtype=torch.bfloat16,
        memory_format=torch.channels_last_3d,
    )
    for key in ("loss", "loss_action", "loss_scene", "loss_object"):
        assert np.isfinite(metrics[key]), key
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast keeps float32 weights
    assert not torch.equal(before["backbone.conv1.weight"], model.state_dict()["backbone.conv1.weight"])


def test_the_gradient_scaler_path_runs_on_cpu():
    """--amp fp16's step (scale, unscale and step through GradScaler), here with float32 maths."""
    torch.manual_seed(0)
    model = build_model(_model_config("tiny"))
    batch = {
        "video": torch.randint(0, 256, (4, 3, 8, 32, 32), dtype=torch.uint8),
        "action": torch.tensor([0, 1, 2, 0]),
        "scene": torch.zeros(4, 4),
        "object": torch.zeros(4, 5),
        "index": torch.arange(4),
        "n": 4,
        "skipped": 0,
    }
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    before = model.backbone.blocks[0].weight.clone()
    metrics = train_one_epoch(
        model,
        Objective(lambda_=-0.3, gamma=1.0),
        torch.optim.SGD(model.parameters(), lr=0.1),
        [batch, batch],
        torch.device("cpu"),
        1,
        mean=torch.tensor(KINETICS_MEAN),
        std=torch.ones(3),
        scaler=scaler,
    )
    assert np.isfinite(metrics["loss"]) and scaler.get_scale() == 65536.0  # no overflow, no back-off
    assert not torch.equal(before, model.backbone.blocks[0].weight)


# --------------------------------------------------------------------------- torchrun / DDP
def test_nproc_per_node_launches_torchrun_with_the_same_options(split, tmp_path, monkeypatch):
    launched = []
    monkeypatch.setattr(
        "subprocess.run",
        lambda command, check: launched.append(command) or subprocess.CompletedProcess(command, 0),
    )
    out = tmp_path / "run"
    args = ["--split", split[0], "--out", out, "--lambda", "-0.2", "--no-hflip", "--channels-last"]
    result = CliRunner().invoke(
        cli, [str(a) for a in ["train", *args, "--backbone", "tiny", "--nproc-per-node", "3"]]
    )
    assert result.exit_code == 0, result.output
    assert launched == [
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=3",
            "-m",
            "trainer",
            "train",
            "--split",
            str(split[0]),
            "--out",
            str(out),
            "--backbone",
            "tiny",
            "--lambda",
            "-0.2",
            "--no-hflip",
            "--channels-last",
        ]
    ]
    # a mistake stops before torchrun, with its own exit code
    bad = CliRunner().invoke(
        cli, [str(a) for a in ["train", *args, "--lambda", "0.2", "--nproc-per-node", "2"]]
    )
    assert bad.exit_code == 3 and "--lambda 0.2 contradicts --method amt" in bad.stderr
    assert len(launched) == 1


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a launcher in its own session; on a hang, SIGTERM lets torchrun stop the processes it started."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("HVUAUDIT_VIDEOS", None)
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                stdout, stderr = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                stdout, stderr = proc.communicate()
            stderr += "\n(stopped after 180 s)"
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _torchrun(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "trainer",
        *args,
    ]


# AMT with an ensemble of 2 scene heads, one re-drawn at epoch 2: a step outside DDP's all-reduce that every
# process must take alike, and that the resumed run (stopped after epoch 1) crosses
ENSEMBLE_ARGS = ["--adversary", "ensemble", "--adversary-heads", "2", "--reinit-every", "1"]
DDP_ARGS = [*TINY_ARGS, "--workers", "1", "--epochs", "2", "--channels-last", "--sync-bn", *ENSEMBLE_ARGS]


@pytest.fixture(scope="module")
def ddp_runs(split, tmp_path_factory) -> dict:
    """Two-process runs on CPU (gloo): one stopped after epoch 1 and resumed, one in one go."""
    root = tmp_path_factory.mktemp("ddp")
    hvuaudit = str(Path(sys.executable).with_name("hvuaudit"))
    first = _run([hvuaudit, "train", "--split", str(split[0]), "--out", "resumed", *DDP_ARGS,
                  "--stop-after", "1", "--nproc-per-node", "2"], root)  # fmt: skip
    metrics_after_first = (root / "resumed" / "metrics.jsonl").read_text() if first.returncode == 0 else ""
    resumed = _run(_torchrun("train", "--out", "resumed", "--resume"), root)
    whole = _run(_torchrun("train", "--split", str(split[0]), "--out", "whole", *DDP_ARGS), root)
    return {
        "root": root,
        "first": first,
        "metrics_after_first": metrics_after_first,
        "resumed": resumed,
        "whole": whole,
    }


@pytest.mark.slow  # two torchrun processes: about 25 s for the shared runs
def test_two_processes_finish_an_epoch_and_only_rank_0_writes(ddp_runs):
    first = ddp_runs["first"]
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "resumed"  # the run folder, printed once
    assert "note: --sync-bn needs several CUDA processes" in first.stderr
    assert first.stderr.count("epoch 1/2") == 1  # rank 1 does not log
    lines = [json.loads(line) for line in ddp_runs["metrics_after_first"].splitlines()]
    assert [line["epoch"] for line in lines] == [1]  # one line: rank 1 appended nothing
    run = ddp_runs["root"] / "resumed"
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [
            ".hvuaudit-owned.json",  # the run marker, written once by rank 0
            "config.json",
            "metrics.jsonl",
            "checkpoint.pt",
            "best.pt",
            "preflight.json",
            "preflight_problems.csv",
        ]
    )
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2 and config["lr"] == 0.01
    assert lines[0]["lr"] == pytest.approx(0.02)  # linear scaling: --lr × 2 processes
    assert "global batch 16; learning rate 0.01 × 2 = 0.02" in first.stderr
    # 24 training clips: 12 per process, one batch of 8 each (drop_last); all 6 selection clips, 3 each
    assert (
        lines[0]["train"]["n"] == 16
        and lines[0]["selection_set"] == "select"
        and lines[0]["select"]["n"] == 6
    )


@pytest.mark.slow  # two torchrun processes: about 25 s for the shared runs
def test_ddp_metrics_are_those_of_all_clips(ddp_runs):
    run = ddp_runs["root"] / "whole"
    assert ddp_runs["whole"].returncode == 0, ddp_runs["whole"].stderr
    result = CliRunner().invoke(
        cli, ["eval", str(run), "--checkpoint", "last", "--workers", "0", "--sets", "select"]
    )
    assert result.exit_code == 0, result.output
    features = np.load(run / "features.npz")
    # one process, every selection clip, last weights
    correct = features["select_pred"] == features["select_action"]
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["select"]["n"] == len(correct) == 6
    assert last["select"]["action_acc"] == pytest.approx(correct.mean())  # not one process's 3 clips
    assert json.loads((run / "eval.json").read_text())["top1"] == pytest.approx(last["select"]["action_acc"])


@pytest.mark.slow  # two torchrun processes: about 25 s for the shared runs
def test_resume_under_ddp_is_exact(ddp_runs):
    resumed = ddp_runs["resumed"]
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed resumed after epoch 1" in resumed.stderr
    a = torch.load(ddp_runs["root"] / "resumed" / "checkpoint.pt", weights_only=True)
    b = torch.load(ddp_runs["root"] / "whole" / "checkpoint.pt", weights_only=True)
    assert a["state"]["epoch"] == b["state"]["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


@pytest.mark.slow  # two torchrun processes: about 25 s for the shared runs
def test_resume_with_another_process_count_is_refused(ddp_runs):
    result = CliRunner().invoke(cli, ["train", "--out", str(ddp_runs["root"] / "whole"), "--resume"])
    assert result.exit_code == 3
    assert "was trained by 2 process(es), this command starts 1" in result.stderr
    assert "--nproc-per-node 2" in result.stderr


def test_the_replica_check_stops_processes_whose_weights_differ():
    from trainer.distributed import DistContext
    from trainer.errors import ReplicaMismatchError

    class TwoProcesses(
        DistContext
    ):  # the all_gather of a process group, with the other rank's answer made up
        def __init__(self, other):
            super().__init__(rank=0, world_size=2)
            object.__setattr__(self, "other", other)

        def all_gather(self, obj):
            return [obj, self.other(list(obj))]

    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(4, 3))
    TwoProcesses(lambda mine: mine).check_replicas_equal(module, epoch=1)  # the same weights: nothing raised
    off = TwoProcesses(lambda mine: [mine[0] + 1e-3, *mine[1:]])  # one tensor off by 1e-3 on the other rank
    with pytest.raises(ReplicaMismatchError, match=r"after epoch 2 the 2 processes hold different weights"):
        off.check_replicas_equal(module, epoch=2)
    swapped = TwoProcesses(lambda mine: [mine[2], mine[3], mine[0], mine[1]])  # the same total, moved
    with pytest.raises(ReplicaMismatchError, match=r"process\(es\) 1 differ from process 0"):
        swapped.check_replicas_equal(module, epoch=3)
    gone_nan = TwoProcesses(lambda mine: [float("nan"), *mine[1:]])
    with pytest.raises(ReplicaMismatchError):
        gone_nan.check_replicas_equal(module, epoch=4)
    assert ReplicaMismatchError.exit_code == 1


@pytest.mark.slow  # two torchrun processes: about 25 s for the shared runs
def test_ensemble_heads_drawn_afresh_stay_equal_across_processes(ddp_runs):
    # every process drew the same head at epoch 2, or the replica check after that epoch had stopped them
    for name in ("first", "resumed", "whole"):
        assert ddp_runs[name].returncode == 0, ddp_runs[name].stderr
    for run in ("whole", "resumed"):  # resumed into the draw: test_resume_under_ddp_is_exact compares them
        lines = [
            json.loads(line) for line in (ddp_runs["root"] / run / "metrics.jsonl").read_text().splitlines()
        ]
        assert [line.get("reinitialised") for line in lines] == [None, {"scene": 0}]


@pytest.fixture(scope="module")
def ddp_cdcorr_run(tmp_path_factory) -> dict:
    """A two-process run (gloo) of the within-action penalty, computed on each process's share."""
    root = tmp_path_factory.mktemp("ddp_cdcorr")
    split_dir, _ = make_split(root / "data", n_train=64, record_videos=True)
    args = [*TINY_ARGS, "--workers", "1", "--method", "amt-no-object", "--lambda", "-1"]
    cdcorr = ["--adversary", "cdcorr", "--batch-size", "16", "--epochs", "2"]
    return {
        "root": root,
        "result": _run(
            _torchrun("train", "--split", str(split_dir), *args, "--out", "cdcorr", *cdcorr), root
        ),
    }


@pytest.mark.slow  # one torchrun launch: about 12 s
def test_the_within_action_penalty_trains_under_ddp(ddp_cdcorr_run):
    result = ddp_cdcorr_run["result"]
    assert result.returncode == 0, result.stderr
    lines = [
        json.loads(line)
        for line in (ddp_cdcorr_run["root"] / "cdcorr" / "metrics.jsonl").read_text().splitlines()
    ]
    # 64 clips, 32 per process: two batches of 16 each, the penalty measured on each process's share
    assert [line["train"]["n"] for line in lines] == [64, 64]
    for line in lines:
        assert -1 < line["train"]["loss_scene_dcorr2"] < 1
        assert 0 < line["train"]["scene_dcorr2_coverage"] <= 1
