"""`hvuaudit plot curves|tsne` and `hvuaudit explain` on tiny runs, and Grad-CAM on a hand-built 3D CNN.

Two tiny runs (baseline and AMT, 2 epochs on the fixture clips of tests/trainer_fixtures.py,
evaluated) are shared by the module; each command must write images of the size its layout
gives. Grad-CAM is checked on a model whose class evidence is, by construction, motion in
one corner of the clip late in time.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from hvuaudit.cli import cli
from hvucontracts.errors import ConflictError, SystemRefusal
from hvucontracts.splitfolder import VideosError
from hvueval import figures, gradcam, plotting, tsne
from tests.trainer_fixtures import TINY_ARGS, make_split
from trainer.models import ModelConfig, build_model

torch.set_num_threads(1)


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A trained and evaluated baseline and AMT run on the same split."""
    root = tmp_path_factory.mktemp("figures")
    split_dir, _ = make_split(root, record_videos=True)
    out = {}
    for method in ("baseline", "amt"):
        run = root / method
        result = invoke(
            "train", "--split", split_dir, "--out", run, *TINY_ARGS, "--method", method, "--epochs", "2"
        )
        assert result.exit_code == 0, result.output
        result = invoke("eval", run, "--workers", "0")
        assert result.exit_code == 0, result.output
        out[method] = run
    return out


# --------------------------------------------------------------------------- commands and sizes
def test_curves_write_accuracy_and_loss_figures(runs, tmp_path):
    target = tmp_path / "new" / "folder" / "curves.png"  # missing folders are created
    result = invoke("plot", "curves", runs["baseline"], runs["amt"], "-o", target)
    assert result.exit_code == 0, result.output
    losses = tmp_path / "new" / "folder" / "curves_losses.png"
    assert result.stdout.split() == [str(target), str(losses)]
    # two panels of 420×340 side by side, plus a 50 px title
    assert png_size(target) == (840, 390)
    assert png_size(losses) == (840, 390)
    # four runs wrap to a 3 + 1 grid
    result = invoke("plot", "curves", *([runs["amt"]] * 4), "-o", tmp_path / "four.png")
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "four.png") == (1260, 730)


def test_tsne_writes_side_by_side_panels_and_states_the_subsample(runs, tmp_path):
    target = tmp_path / "tsne.png"
    result = invoke(
        "plot", "tsne", runs["baseline"], runs["amt"], "--color", "scene", "--max-points", "8", "-o", target
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(target)
    assert "random 8 of 12 clips" in result.stderr
    # two 500 px panels, a 50 px title and one 30 px legend row (4 scenes)
    assert png_size(target) == (1000, 580)


def test_tsne_is_deterministic_for_a_seed(runs, tmp_path):
    _, first = tsne.plot_tsne([runs["amt"]], tmp_path / "a.png", max_points=8, seed=3)
    _, again = tsne.plot_tsne([runs["amt"]], tmp_path / "b.png", max_points=8, seed=3)
    _, other = tsne.plot_tsne([runs["amt"]], tmp_path / "c.png", max_points=8, seed=4)
    assert (first.n_shown, first.n_available) == (8, 12)
    assert list(first.clip_ids) == list(again.clip_ids)
    np.testing.assert_array_equal(first.embeddings[0], again.embeddings[0])
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert list(first.clip_ids) != list(other.clip_ids)

    points = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    a, b = tsne.embed_tsne(points, seed=0), tsne.embed_tsne(points, seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (60, 2)


def test_tsne_colours_the_most_frequent_classes_and_greys_the_rest():
    labels = np.array([f"c{i:02d}" for i in range(25) for _ in range(25 - i)])
    colours, n_grey = tsne.class_colours(labels)
    assert list(colours) == [f"c{i:02d}" for i in range(plotting.MAX_COLOURED_CLASSES)]
    assert n_grey == 25 - plotting.MAX_COLOURED_CLASSES
    assert len(set(colours.values())) == len(colours)


def test_explain_writes_a_strip_and_a_gif_per_clip_with_runs_side_by_side(runs, tmp_path):
    out = tmp_path / "gradcam"
    result = invoke("explain", runs["baseline"], runs["amt"], "--clips", "v000,v004", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [str(out / f) for f in ("v000.png", "v000.gif", "v004.png", "v004.gif")]
    # 8 frames of 140 px; two rows of 140 + 50 px; a 50 px title
    assert png_size(out / "v000.png") == (1120, 430)
    with Image.open(out / "v000.gif") as gif:
        assert gif.size == (2 * plotting.GIF_PANEL_PX, plotting.GIF_PANEL_PX + plotting.GIF_LABEL_PX)
        assert gif.n_frames == 8  # --clip-len 8
    result = invoke(
        "explain", runs["amt"], "--clips", "v001", "--target", "scene", "--class-of", "true", "-o", out
    )
    assert result.exit_code == 0, result.output
    assert png_size(out / "v001.png") == (1120, 240)


def test_explanation_names_the_predicted_and_true_labels(runs):
    run = gradcam.load_explainable_run(runs["amt"], device="cpu")
    explanation = gradcam.explain_clip(run, "v002", target="action")
    assert explanation.true == "swim"  # clip i has action i % 3
    assert explanation.explained == explanation.predicted
    assert explanation.frames.shape == (8, 32, 32, 3) and explanation.frames.dtype == np.uint8
    assert explanation.heat.shape == (8, 32, 32)
    assert 0.0 <= explanation.heat.min() and explanation.heat.max() <= 1.0
    assert f"pred {explanation.predicted}" in explanation.caption and "true swim" in explanation.caption
    scene = gradcam.explain_clip(run, "v001", target="scene", class_of="true")
    assert scene.true == "field|gym"  # the chosen scene first, then the other scene tags
    assert scene.explained == "field"


def test_run_figures_for_a_report(runs, tmp_path):
    unevaluated = tmp_path / "unevaluated"
    shutil.copytree(runs["amt"], unevaluated, ignore=shutil.ignore_patterns("eval.json", "features.npz"))
    notes: list[str] = []
    paths = figures.write_run_figures(
        [runs["baseline"], runs["amt"], unevaluated], tmp_path / "report", gradcam_clips=1, log=notes.append
    )
    names = sorted(p.relative_to(tmp_path / "report").as_posix() for p in paths)
    gradcam = [n for n in names if n.startswith("gradcam/")]
    assert sorted(set(names) - set(gradcam)) == [
        "curves.png",
        "curves_losses.png",
        "tsne_action.png",
        "tsne_scene.png",
    ]
    assert [Path(n).suffix for n in gradcam] == [".gif", ".png"]  # one clip: a GIF and a strip
    assert png_size(tmp_path / "report" / "curves.png") == (1260, 390)  # three runs
    assert any("hvuaudit eval" in note and "unevaluated" in note for note in notes)


# --------------------------------------------------------------------------- Grad-CAM on a hand-built case
class FlickerModel(nn.Module):
    """A 3D CNN whose class-0 score is change over time; static brightness counts against it.

    Channels of ``stage`` (kernel 2×3×3 with only its centre taps set, stride 1×2×2:
    (b, 3, t, h, w) -> (b, 3, t-1, h/2, w/2)): 0 = brightening and 1 = darkening between
    consecutive frames, 2 = brightness. Class 0 scores 1·change − 0.1·brightness averaged
    over the clip; class 1 scores nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv3d(3, 3, kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[0, :, 1, 1, 1] = 1 / 3  # frame t+1 − frame t, averaged over the colours
            conv.weight[0, :, 0, 1, 1] = -1 / 3
            conv.weight[1] = -conv.weight[0]
            conv.weight[2, :, :, 1, 1] = 1 / 6  # mean brightness of the two frames
        self.stage = nn.Sequential(conv, nn.ReLU())
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 1.0, -0.1], [0.0, 0.0, 0.0]]))
            self.head.bias.zero_()

    def forward(self, video: torch.Tensor) -> torch.Tensor:  # (b, 3, t, h, w) -> (b, 2)
        return self.head(self.stage(video).mean(dim=(2, 3, 4)))


def corner_flicker_clip(t: int = 12, size: int = 32) -> torch.Tensor:
    """(1, 3, t, size, size): static noise everywhere, except that from frame t/2 on the
    top-right quadrant gets fresh noise every frame (the only change over time)."""
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(1, 3, 1, size, size, generator=generator).expand(1, 3, t, size, size).clone()
    half = size // 2
    for frame in range(t // 2, t):
        video[:, :, frame, :half, half:] = torch.rand(1, 3, half, half, generator=generator)
    return video


def test_grad_cam_heat_sits_where_the_class_signal_is():
    model = FlickerModel().eval()
    video = corner_flicker_clip()
    heat = gradcam.grad_cam(video, model.stage, lambda clip: model(clip)[:, 0])[0]  # (t, h, w)
    assert heat.shape == (12, 32, 32)
    assert float(heat.max()) == pytest.approx(1.0)
    signal = torch.zeros_like(heat, dtype=torch.bool)
    signal[7:, :16, 16:] = True  # the flickering frames, top-right quadrant
    late = torch.zeros_like(signal)
    late[7:] = True
    inside, elsewhere = float(heat[signal].mean()), float(heat[~signal].mean())
    assert inside > 0.1
    assert inside > 10 * elsewhere, (inside, elsewhere)
    # in time: the same corner before it flickers carries no evidence
    assert float(heat[:5, :16, 16:].mean()) < 0.1 * inside
    # in space: the other quadrants of the flickering frames are cold (a swapped h/w would fail here)
    assert float(heat[late & ~signal].mean()) < 0.1 * inside


def test_grad_cam_of_a_class_without_evidence_is_zero():
    model = FlickerModel().eval()
    heat = gradcam.grad_cam(corner_flicker_clip(), model.stage, lambda clip: model(clip)[:, 1])
    assert float(heat.abs().max()) == 0.0


@pytest.mark.parametrize(("backbone", "stage"), [("tiny", "blocks"), ("r3d18", "layer4")])
def test_grad_cam_on_each_backbone(backbone, stage):
    torch.manual_seed(0)
    config = ModelConfig(
        backbone=backbone,
        n_actions=3,
        n_scenes=4,
        n_objects=5,
        head_hidden=8,
        scene_head=True,
        object_head=False,
    )
    model = build_model(config).eval()
    name, layer = gradcam.last_conv_stage(model.backbone)
    assert name == stage
    video = torch.randn(2, 3, 8, 32, 32)  # (b, 3, t, h, w)
    heat = gradcam.grad_cam(video, layer, lambda clip: model(clip, {"scene": None})["scene"][:, 1])
    assert heat.shape == (2, 8, 32, 32)
    assert float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0 + 1e-6
    assert not any(p.grad is not None for p in model.parameters())  # autograd.grad leaves .grad alone


# --------------------------------------------------------------------------- clear messages
def test_tsne_of_an_unevaluated_run_says_to_run_eval(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["amt"], run, ignore=shutil.ignore_patterns("eval.json", "features.npz"))
    result = invoke("plot", "tsne", run, "-o", tmp_path / "t.png")
    assert result.exit_code == 4
    assert f"{run / 'eval.json'}: missing" in result.stderr
    assert f"run `hvuaudit eval {run}` first" in result.stderr
    (run / "eval.json").write_text(json.dumps({"sets": {}}))
    result = invoke("plot", "tsne", run, "-o", tmp_path / "t.png")
    assert result.exit_code == 4 and f"{run / 'features.npz'}: missing" in result.stderr
    result = invoke("plot", "tsne", runs["amt"], "--set", "test", "-o", tmp_path / "t.png")
    assert result.exit_code == 3 and "has no set 'test' (it has val)" in result.stderr
    assert not (tmp_path / "t.png").exists()


def test_curves_of_a_folder_without_metrics_says_to_train(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("plot", "curves", tmp_path / "empty", "-o", tmp_path / "c.png")
    assert result.exit_code == 4
    assert f"{tmp_path / 'empty' / 'metrics.jsonl'}: missing" in result.stderr
    assert "hvuaudit train --out" in result.stderr
    result = invoke("plot", "curves", tmp_path / "nowhere", "-o", tmp_path / "c.png")
    assert result.exit_code == 4 and "does not exist" in result.stderr
    (tmp_path / "empty" / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "tra')
    result = invoke("plot", "curves", tmp_path / "empty", "-o", tmp_path / "c.png")
    assert result.exit_code == 3 and "line 2 is not JSON" in result.stderr


def test_explain_refuses_unknown_clips_and_missing_heads(runs, tmp_path):
    result = invoke("explain", runs["amt"], "--clips", "nope", "-o", tmp_path)
    assert result.exit_code == 3
    assert "clip 'nope' is in none of the sets" in result.stderr and "e.g. v000, v001, v002" in result.stderr
    result = invoke("explain", runs["amt"], "-o", tmp_path)
    assert result.exit_code == 3 and "pass --clips ID" in result.stderr
    result = invoke("explain", runs["baseline"], "--clips", "v000", "--target", "scene", "-o", tmp_path)
    assert result.exit_code == 3 and "has no trained scene head" in result.stderr
    result = invoke("explain", runs["amt"], "--clips", "v000", "--videos", tmp_path, "-o", tmp_path / "o")
    assert result.exit_code == 3 and "the file of clip v000 is not there" in result.stderr
    assert list(tmp_path.glob("*.png")) == []


@pytest.mark.parametrize("path", [("plot",), ("plot", "curves"), ("plot", "tsne"), ("explain",)])
def test_figure_commands_have_help_with_an_example(path):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output


@pytest.mark.parametrize(
    ("error", "reaches_the_caller"),
    [
        (SystemRefusal("could not write x.png: No space left on device"), True),
        (ConflictError("x.png: a symbolic link; refusing to replace it"), True),
        (VideosError("videos directory /nowhere does not exist"), False),
    ],
    ids=["disk full", "refused overwrite", "no videos"],
)
def test_run_figures_note_missing_videos_but_never_hide_a_full_disk(
    runs, tmp_path, monkeypatch, error, reaches_the_caller
):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(gradcam, "explain_clips", failing)
    notes: list[str] = []
    pair = [runs["baseline"], runs["amt"]]
    if reaches_the_caller:
        with pytest.raises(type(error)):
            figures.write_run_figures(pair, tmp_path / "report", gradcam_clips=1, log=notes.append)
    else:
        written = figures.write_run_figures(pair, tmp_path / "report", gradcam_clips=1, log=notes.append)
        assert any(p.name == "tsne_scene.png" for p in written)
        assert any("no Grad-CAM figures: videos directory /nowhere" in note for note in notes)
