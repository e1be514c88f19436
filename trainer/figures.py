"""The paper's figures from run folders: training curves (Fig. 4), feature t-SNE (Fig. 5), Grad-CAM (Fig. 6).

Last step of the trainer, next to the report: it reads what ``hvuaudit train`` and
``hvuaudit eval`` left in a run folder and draws pictures of it.

- Curves read ``metrics.jsonl`` (one line per epoch).
- The t-SNE reads ``features.npz`` (written by ``hvuaudit eval``).
- Grad-CAM rebuilds the model from a checkpoint and decodes clips with the trainer's own
  data code, so a clip is cropped and normalised exactly as in evaluation.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot, no
global backend) and written atomically: a temporary file, then ``os.replace``. Image
sizes are set in pixels, so a figure's size follows from its layout alone. It never
changes a run folder and never imports ``hvuaudit``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from hvucontracts.files import write_atomically
from trainer.config import TrainConfig
from trainer.data import ClipDataset, ClipSettings, Split, build_table, load_split, resolve_videos_dir
from trainer.engine import to_device
from trainer.errors import MissingArtifactError, TrainerError
from trainer.evaluate import load_run_model
from trainer.models import BACKBONES, AMTModel
from trainer.train import resolve_device

DPI = 100
# t-SNE: above this many clips a seeded random subsample is embedded (the figure says so).
DEFAULT_MAX_POINTS = 5000
# t-SNE legends: the most frequent classes get their own colour, the rest are grey "other".
MAX_COLOURED_CLASSES = 18
# Grad-CAM strips show at most this many evenly spaced frames; the GIF shows every frame.
MAX_STRIP_FRAMES = 8
HEAT_ALPHA = 0.45
GIF_PANEL_PX = 160
GIF_LABEL_PX = 30
GIF_FRAME_MS = 125

# Layout in pixels at DPI (so the image size of each figure is known exactly).
CURVE_PANEL_PX = (420, 340)
TSNE_PANEL_PX = 500
TITLE_PX = 50
LEGEND_ROW_PX = 30
LEGEND_COLUMNS = 6
STRIP_CELL_PX = 140
STRIP_ROW_TITLE_PX = 50


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- writing
def new_figure(width_px: int, height_px: int) -> Figure:
    """A Figure that saves to exactly width_px × height_px at DPI.

    Agg truncates figsize·dpi to an int, and 4.3 · 100 is 429.99…, so a quarter pixel
    is added to land on the intended integer.
    """
    return Figure(figsize=((width_px + 0.25) / DPI, (height_px + 0.25) / DPI), dpi=DPI, layout="constrained")


def _prepare_output(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise TrainerError(f"{path}: is a folder; give a file name such as {path / 'figure.png'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, or no permission
        raise TrainerError(
            f"{path.parent}: could not be created ({exc}); choose another output path"
        ) from exc
    return path


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` atomically; the format follows the suffix (.png, .pdf, .svg)."""
    path = _prepare_output(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=DPI))
    except ValueError as exc:  # matplotlib: unknown format
        raise TrainerError(f"{path}: cannot write a .{fmt} figure ({exc}); use .png, .pdf or .svg") from exc
    return path


def save_gif(frames: Sequence[Image.Image], path: Path, *, frame_ms: int = GIF_FRAME_MS) -> Path:
    """An endlessly looping animated GIF, written atomically."""
    path = _prepare_output(path)
    write_atomically(path, lambda tmp: frames[0].save(
        tmp, format="GIF", save_all=True, append_images=list(frames[1:]), duration=frame_ms, loop=0
    ))
    return path


def losses_path(curves_path: Path) -> Path:
    """Where the per-head losses go: ``curves.png`` -> ``curves_losses.png``."""
    curves_path = Path(curves_path)
    return curves_path.with_name(f"{curves_path.stem}_losses{curves_path.suffix or '.png'}")


# --------------------------------------------------------------------------- run folders
def _require_run_dir(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MissingArtifactError(f"run folder {run_dir} does not exist; train one with `hvuaudit train`")
    return run_dir


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run, or {} when it is missing or unreadable (it only labels figures)."""
    try:
        data = json.loads((Path(run_dir) / "config.json").read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # ValueError: not UTF-8, or not JSON
        return {}
    return data if isinstance(data, dict) else {}


def run_label(run_dir: Path, config: dict[str, Any] | None = None) -> str:
    """``NAME (method, backbone)``, e.g. ``si2_amt (amt, r3d18)``."""
    config = read_run_config(run_dir) if config is None else config
    parts = [str(config[k]) for k in ("method", "backbone") if config.get(k)]
    return f"{Path(run_dir).name} ({', '.join(parts)})" if parts else Path(run_dir).name


def _roles_note(config: dict[str, Any]) -> str:
    """The auxiliary tasks and their signed weights, e.g. ``scene adversarial (λ=-0.3) · object auxiliary (γ=1)``."""
    tasks = config.get("tasks") or {}
    parts = []
    for head, weight, symbol in (("scene", "lambda", "λ"), ("object", "gamma", "γ")):
        role = tasks.get(head)
        if role:
            value = config.get(weight)
            parts.append(
                f"{head} {role}" + (f" ({symbol}={value:g})" if isinstance(value, int | float) else "")
            )
    return " · ".join(parts) or "action head only"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The epoch lines of ``metrics.jsonl``, oldest first."""
    run_dir = _require_run_dir(run_dir)
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise MissingArtifactError(
            f"{path}: missing, so {run_dir} has no training curves; train it with "
            f"`hvuaudit train --out {run_dir}` (or --resume it)"
        )
    lines = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise TrainerError(
                f"{path}: line {number} is not JSON ({exc}); the file was damaged. "
                f"`hvuaudit train --out {run_dir} --resume` rewrites it from the last checkpoint"
            ) from exc
    if not lines:
        raise TrainerError(
            f"{path}: holds no epoch yet; let `hvuaudit train --out {run_dir}` finish an epoch first"
        )
    return lines


def _series(lines: list[dict[str, Any]], side: str, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of ``line[side][key]`` where it is a number (heads a run lacks are null)."""
    epochs, values = [], []
    for line in lines:
        value = (line.get(side) or {}).get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            epochs.append(int(line["epoch"]))
            values.append(float(value))
    return epochs, values


def _phase_changes(lines: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """(x, new phase) where the phase changes, e.g. pretrain -> finetune for pretrain-adv."""
    out = []
    for before, after in zip(lines, lines[1:], strict=False):
        if before.get("phase") != after.get("phase"):
            out.append((before["epoch"] + 0.5, str(after.get("phase"))))
    return out


def _grid(n: int, max_columns: int = 3) -> tuple[int, int]:
    columns = min(n, max_columns)
    return math.ceil(n / columns), columns


# --------------------------------------------------------------------------- Fig. 4: curves
CURVE_HEADS = (("action", "C0"), ("scene", "C3"))
LOSS_HEADS = (("loss_action", "action", "C0"), ("loss_scene", "scene", "C3"), ("loss_object", "object", "C2"))


def _curve_axes(n_runs: int, title: str) -> tuple[Figure, list[Any]]:
    rows, columns = _grid(n_runs)
    fig = new_figure(CURVE_PANEL_PX[0] * columns, CURVE_PANEL_PX[1] * rows + TITLE_PX)
    fig.suptitle(title)
    axes = list(np.atleast_1d(fig.subplots(rows, columns, squeeze=False).ravel()))
    for ax in axes[n_runs:]:
        ax.set_visible(False)
    return fig, axes[:n_runs]


def _mark_phases(ax: Any, lines: list[dict[str, Any]]) -> None:
    for x, phase in _phase_changes(lines):
        ax.axvline(x, color="0.5", linewidth=0.8, linestyle=":")
        ax.text(x, 0.98, f" {phase}", transform=ax.get_xaxis_transform(), va="top", fontsize=7, color="0.4")


def draw_accuracy_curves(runs: list[tuple[Path, list[dict[str, Any]]]]) -> Figure:
    """Fig. 4: action and scene-head accuracy per epoch (train solid, val dashed), one panel per run."""
    fig, axes = _curve_axes(len(runs), "Action accuracy and scene-head accuracy per epoch (Fig. 4)")
    for ax, (run_dir, lines) in zip(axes, runs, strict=True):
        config = read_run_config(run_dir)
        for head, colour in CURVE_HEADS:
            for side, style in (("train", "-"), ("val", "--")):
                epochs, values = _series(lines, side, f"{head}_acc")
                if epochs:
                    ax.plot(
                        epochs, values, style, color=colour, marker="o", markersize=3, label=f"{head} {side}"
                    )
        _mark_phases(ax, lines)
        ax.set_title(f"{run_label(run_dir, config)}\n{_roles_note(config)}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", handlelength=3)
    return fig


def draw_loss_curves(runs: list[tuple[Path, list[dict[str, Any]]]]) -> Figure:
    """Raw (unweighted) loss of each head per epoch (train solid, val dashed), one panel per run."""
    fig, axes = _curve_axes(len(runs), "Loss of each head per epoch (raw, before the λ/γ weights)")
    for ax, (run_dir, lines) in zip(axes, runs, strict=True):
        config = read_run_config(run_dir)
        values_seen: list[float] = []
        for key, head, colour in LOSS_HEADS:
            for side, style in (("train", "-"), ("val", "--")):
                epochs, values = _series(lines, side, key)
                if epochs:
                    ax.plot(
                        epochs, values, style, color=colour, marker="o", markersize=3, label=f"{head} {side}"
                    )
                    values_seen += values
        positive = [v for v in values_seen if v > 0]
        # a runaway scene loss (--adversary negative) would flatten every other line
        if positive and max(positive) / min(positive) > 100:
            ax.set_yscale("log")
        _mark_phases(ax, lines)
        ax.set_title(f"{run_label(run_dir, config)}\n{_roles_note(config)}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", handlelength=3)
    return fig


def plot_curves(run_dirs: Sequence[str | Path], output: str | Path) -> tuple[Path, Path]:
    """Write the accuracy curves to ``output`` and the per-head losses next to it (``*_losses``)."""
    runs = [(Path(r), read_metrics(Path(r))) for r in run_dirs]
    if not runs:
        raise TrainerError("no run folder given; pass one or more, e.g. runs/si2_amt")
    output = Path(output)
    return (
        save_figure(draw_accuracy_curves(runs), output),
        save_figure(draw_loss_curves(runs), losses_path(output)),
    )


# --------------------------------------------------------------------------- Fig. 5: t-SNE
@dataclass(frozen=True)
class RunFeatures:
    """One evaluated set of a run, from ``features.npz`` (rows in the same order everywhere)."""

    run_dir: Path
    set_name: str
    features: np.ndarray  # (n, d) float32
    action: np.ndarray  # (n,) int64, index into action_names
    pred: np.ndarray  # (n,) int64
    scene: np.ndarray  # (n,) str: the chosen scene, else the first scene tag, else "(no scene)"
    clip_id: np.ndarray  # (n,) str
    action_names: list[str]
    eval_metrics: dict[str, Any]
    """This set's entry of eval.json (top1, dcorr2, ...)."""

    def labels(self, color: str) -> np.ndarray:
        return np.array(self.action_names, dtype=str)[self.action] if color == "action" else self.scene


def _eval_first(run_dir: Path, path: Path, what: str) -> MissingArtifactError:
    return MissingArtifactError(
        f"{path}: missing, so {run_dir} has {what}; run `hvuaudit eval {run_dir}` first "
        "(it writes eval.json and features.npz)"
    )


def load_features(run_dir: str | Path, set_name: str = "val") -> RunFeatures:
    """The features ``hvuaudit eval`` saved for one set of a run."""
    run_dir = _require_run_dir(Path(run_dir))
    eval_path, npz_path = run_dir / "eval.json", run_dir / "features.npz"
    if not eval_path.is_file():
        raise _eval_first(run_dir, eval_path, "not been evaluated")
    if not npz_path.is_file():
        raise _eval_first(run_dir, npz_path, "no saved features")
    try:
        doc = json.loads(eval_path.read_text())
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError, as is a bad zip
        raise TrainerError(
            f"{run_dir}: eval.json or features.npz could not be read ({exc}); run `hvuaudit eval {run_dir}` again"
        ) from exc
    sets = [str(s) for s in arrays.get("sets", [])]
    if set_name not in sets:
        raise TrainerError(
            f"{npz_path}: has no set {set_name!r} (it has {', '.join(sets) or 'none'}); pass --set with one "
            f"of those, or evaluate it with `hvuaudit eval {run_dir} --sets {set_name}`"
        )
    needed = [f"{set_name}_{key}" for key in ("features", "action", "pred", "scene", "scenes", "clip_id")]
    lacking = [key for key in (*needed, "action_names") if key not in arrays]
    if lacking:
        raise TrainerError(
            f"{npz_path}: lacks {', '.join(lacking)} (an older `hvuaudit eval` wrote it); "
            f"run `hvuaudit eval {run_dir}` again"
        )
    chosen, tags = arrays[f"{set_name}_scene"], arrays[f"{set_name}_scenes"]
    scene = np.array(
        [c or (t.split("|")[0] if t else "(no scene)") for c, t in zip(chosen, tags, strict=True)], dtype=str
    )
    return RunFeatures(
        run_dir=run_dir,
        set_name=set_name,
        features=arrays[f"{set_name}_features"].astype(np.float32),
        action=arrays[f"{set_name}_action"].astype(np.int64),
        pred=arrays[f"{set_name}_pred"].astype(np.int64),
        scene=scene,
        clip_id=arrays[f"{set_name}_clip_id"].astype(str),
        action_names=[str(a) for a in arrays["action_names"]],
        eval_metrics=(doc.get("sets") or {}).get(set_name) or {},
    )


def select_clips(runs: Sequence[RunFeatures], *, max_points: int, seed: int) -> tuple[np.ndarray, int]:
    """The clip ids every run has, subsampled to ``max_points`` with a seeded RNG.

    Returns (chosen clip ids in the first run's order, how many were available). The
    same clips are drawn in every panel so the runs are compared on equal terms.
    """
    shared = set(runs[0].clip_id.tolist())
    for run in runs[1:]:
        shared &= set(run.clip_id.tolist())
    available = np.array([c for c in runs[0].clip_id if c in shared], dtype=str)
    if len(available) == 0:
        raise TrainerError(
            f"the runs share no {runs[0].set_name} clip ({', '.join(str(r.run_dir) for r in runs)}); "
            "compare runs evaluated on the same split"
        )
    if len(available) <= max_points:
        return available, len(available)
    keep = np.sort(np.random.default_rng(seed).choice(len(available), size=max_points, replace=False))
    return available[keep], len(available)


def tsne_perplexity(n: int) -> float:
    """scikit-learn's default 30, lowered for small sets (it must stay below n; (n - 1) / 3 keeps
    about three perplexities' worth of neighbours)."""
    return float(min(30.0, max(1.0, (n - 1) / 3)))


def embed_tsne(features: np.ndarray, *, seed: int) -> np.ndarray:
    """(n, d) -> (n, 2) with scikit-learn's t-SNE (PCA init, seeded), on one thread.

    Barnes-Hut sums forces across OpenMP threads, so more threads could change the last
    bits from run to run; one thread makes the same seed give the same picture.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(features)
    if n < 5:
        raise TrainerError(f"t-SNE needs at least 5 clips; only {n} are available")
    tsne = TSNE(
        n_components=2, perplexity=tsne_perplexity(n), init="pca", learning_rate="auto", random_state=seed
    )
    with threadpool_limits(limits=1):
        return tsne.fit_transform(np.asarray(features, dtype=np.float64)).astype(np.float32)


def class_colours(labels: np.ndarray) -> tuple[dict[str, Any], int]:
    """A colour for each of the most frequent classes (ties by name); (colours, classes left grey)."""
    names, counts = np.unique(labels, return_counts=True)
    order = sorted(range(len(names)), key=lambda i: (-counts[i], str(names[i])))
    # tab20's strong colours, then its light ones (neighbours in tab20 are hard to tell apart);
    # its two greys are kept for "other"
    tab20 = colormaps["tab20"].colors
    palette = [tab20[i] for i in (*range(0, 20, 2), *range(1, 20, 2)) if i not in (14, 15)]
    top = [str(names[i]) for i in order[:MAX_COLOURED_CLASSES]]
    return {name: palette[k] for k, name in enumerate(top)}, len(names) - len(top)


@dataclass(frozen=True)
class TsneEmbedding:
    """The same clips embedded once per run; colouring by action or by scene reuses it."""

    runs: list[RunFeatures]
    clip_ids: np.ndarray  # (n_shown,) str, the clips drawn in every panel
    rows: list[np.ndarray]  # per run: (n_shown,) row indices of clip_ids in its features.npz
    embeddings: list[np.ndarray]  # per run: (n_shown, 2)
    n_available: int
    max_points: int
    seed: int

    @property
    def n_shown(self) -> int:
        return len(self.clip_ids)


def compute_tsne(
    run_dirs: Sequence[str | Path],
    *,
    set_name: str = "val",
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
) -> TsneEmbedding:
    """t-SNE of each run's features of ``set_name`` on the same (subsampled) clips."""
    if max_points < 5:
        raise TrainerError(f"--max-points {max_points}: t-SNE needs at least 5")
    if not run_dirs:
        raise TrainerError("no run folder given; pass one or more, e.g. runs/si2_amt")
    runs = [load_features(r, set_name) for r in run_dirs]
    chosen, n_available = select_clips(runs, max_points=max_points, seed=seed)
    rows = []
    for run in runs:
        row_of = {c: i for i, c in enumerate(run.clip_id)}
        rows.append(np.array([row_of[c] for c in chosen], dtype=np.int64))
    return TsneEmbedding(
        runs=runs,
        clip_ids=chosen,
        rows=rows,
        embeddings=[embed_tsne(run.features[r], seed=seed) for run, r in zip(runs, rows, strict=True)],
        n_available=n_available,
        max_points=max_points,
        seed=seed,
    )


def draw_tsne(embedding: TsneEmbedding, color: str) -> Figure:
    """Fig. 5: one panel per run, points coloured by action or scene; the title states the sample."""
    if color not in ("action", "scene"):
        raise TrainerError(f"--color {color!r}: choose action or scene")
    runs = embedding.runs
    labels = [run.labels(color)[r] for run, r in zip(runs, embedding.rows, strict=True)]
    colours, n_grey = class_colours(labels[0])  # the same clips, so the same true labels, in every panel
    other = "0.75"
    n_entries = len(colours) + (1 if n_grey else 0)
    legend_rows = math.ceil(n_entries / LEGEND_COLUMNS)
    rows, columns = _grid(len(runs))
    fig = new_figure(TSNE_PANEL_PX * columns, TSNE_PANEL_PX * rows + TITLE_PX + LEGEND_ROW_PX * legend_rows)
    n, seed = embedding.n_shown, embedding.seed
    if n < embedding.n_available:
        sample = (
            f"{n} of {embedding.n_available} clips "
            f"(random subsample above --max-points {embedding.max_points}, seed {seed})"
        )
    else:
        sample = f"all {n} clips (seed {seed})"
    fig.suptitle(
        f"t-SNE of the {runs[0].set_name} features coloured by {color}: {sample}; "
        f"perplexity {tsne_perplexity(n):.3g}",
        fontsize=10,
    )
    axes = list(fig.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[len(runs) :]:
        ax.set_visible(False)
    for ax, run, xy, names in zip(axes, runs, embedding.embeddings, labels, strict=False):
        point_colours = [colours.get(str(name), other) for name in names]
        ax.scatter(xy[:, 0], xy[:, 1], c=point_colours, s=8 if n > 500 else 18, linewidths=0)
        metrics = run.eval_metrics
        scores = []
        if isinstance(metrics.get("top1"), int | float):
            scores.append(f"top-1 {metrics['top1']:.3f}")
        if isinstance(metrics.get("dcorr2"), int | float):
            scores.append(f"dcorr² {metrics['dcorr2']:.3f}")
        ax.set_title(f"{run_label(run.run_dir)}\n{' · '.join(scores)}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=name) for name, c in colours.items()]
    if n_grey:
        handles.append(
            Line2D([], [], marker="o", linestyle="", color=other, label=f"other ({n_grey} classes)")
        )
    fig.legend(handles=handles, loc="outside lower center", ncol=LEGEND_COLUMNS, fontsize=8, frameon=False)
    return fig


def plot_tsne(
    run_dirs: Sequence[str | Path],
    output: str | Path,
    *,
    color: str = "action",
    set_name: str = "val",
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
) -> tuple[Path, TsneEmbedding]:
    """Fig. 5 for ``run_dirs`` into ``output``; returns the path and the embedding drawn."""
    if color not in ("action", "scene"):  # before the slow part
        raise TrainerError(f"--color {color!r}: choose action or scene")
    embedding = compute_tsne(run_dirs, set_name=set_name, max_points=max_points, seed=seed)
    return save_figure(draw_tsne(embedding, color), Path(output)), embedding


# --------------------------------------------------------------------------- Fig. 6: Grad-CAM
def last_conv_stage(backbone: nn.Module) -> tuple[str, nn.Module]:
    """The last child of the backbone that holds a Conv3d: its output is what Grad-CAM weighs.

    TinyBackbone -> ``blocks``; torchvision's r3d_18 (and the Hara 3D-ResNets) -> ``layer4``.
    """
    stage = None
    for name, child in backbone.named_children():
        if any(isinstance(m, nn.Conv3d) for m in child.modules()):
            stage = (name, child)
    if stage is None:
        raise TrainerError(f"{type(backbone).__name__} has no Conv3d layer; Grad-CAM needs a 3D CNN")
    return stage


def grad_cam(
    video: torch.Tensor,
    layer: nn.Module,
    class_score: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Grad-CAM volumes of a batch of clips, upsampled to the clips and scaled to [0, 1].

    ``video`` is the normalised input (b, 3, t, h, w); ``class_score`` runs the model
    (in eval mode) on it and returns one class score per clip (b,), a logit rather than
    a probability (Selvaraju et al.); ``layer`` is a module inside that model.
    The gradient of the score with respect to ``layer``'s output A (b, c, t', h', w') is
    averaged over time and space into channel weights α (b, c); ReLU(Σ_c α_c A_c) is the
    class activation volume (b, t', h', w'), trilinearly upsampled to (b, t, h, w) and
    divided by each clip's maximum (an all-zero volume stays zero: no positive evidence).
    """
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        with torch.enable_grad():
            # the input joins the graph, so the activation has a grad even with frozen weights
            video = video.detach().requires_grad_(True)
            scores = class_score(video)  # (b,)
            activation = captured[-1]  # (b, c, t', h', w')
            (gradient,) = torch.autograd.grad(scores.sum(), activation)  # clips are independent in eval mode
    finally:
        handle.remove()
    weights = gradient.mean(dim=(2, 3, 4))  # (b, c)
    cam = F.relu((weights[:, :, None, None, None] * activation).sum(1)).detach()  # (b, t', h', w')
    cam = F.interpolate(cam.unsqueeze(1), size=tuple(video.shape[2:]), mode="trilinear", align_corners=False)
    cam = cam.squeeze(1)  # (b, t, h, w)
    peak = cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None, None]
    return cam / peak  # (b, t, h, w)


def overlay_heat(frames: np.ndarray, heat: np.ndarray, *, alpha: float = HEAT_ALPHA) -> np.ndarray:
    """(t, h, w, 3) uint8 frames + (t, h, w) heat in [0, 1] -> (t, h, w, 3) uint8 blended with jet."""
    coloured = colormaps["jet"](heat)[..., :3]  # (t, h, w, 3) float in [0, 1]
    blended = (1 - alpha) * frames.astype(np.float32) / 255.0 + alpha * coloured
    return np.clip(np.round(blended * 255), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ExplainableRun:
    """A run's model, rebuilt from its checkpoint, with what it takes to decode its clips."""

    run_dir: Path
    label: str
    model: AMTModel
    config: TrainConfig
    split: Split
    videos_dir: Path
    template: str
    device: torch.device


def load_explainable_run(
    run_dir: str | Path, *, checkpoint: str = "best", videos: str | None = None, device: str = "auto"
) -> ExplainableRun:
    run_dir = Path(run_dir)
    model, ckpt = load_run_model(run_dir, checkpoint)
    config = TrainConfig.from_json(ckpt["config"])
    split = load_split(ckpt["config"].get("split_dir") or config.split_dir)
    videos_dir, _ = resolve_videos_dir(videos, split.manifest, recorded=ckpt["config"].get("videos_dir"))
    dev = resolve_device(device)
    return ExplainableRun(
        run_dir=run_dir,
        label=run_label(run_dir, ckpt["config"]),
        model=model.to(dev).eval(),
        config=config,
        split=split,
        videos_dir=videos_dir,
        template=config.name_template or "mmaction",
        device=dev,
    )


@dataclass(frozen=True)
class ClipExplanation:
    """Grad-CAM of one clip under one run."""

    run_label: str
    clip_id: str
    set_name: str
    frames: np.ndarray  # (t, h, w, 3) uint8, the model's input before normalisation
    heat: np.ndarray  # (t, h, w) float32 in [0, 1]
    target: str
    explained: str  # the class whose score is explained
    predicted: str
    probability: float
    true: str
    layer: str

    @property
    def caption(self) -> str:
        return f"{self.run_label}: pred {self.predicted} ({self.probability:.2f}) · true {self.true}"


def _find_clip(split: Split, clip_id: str) -> tuple[str, Any]:
    """(set name, one-row DataFrame) of a clip id, looking in the evaluation sets first."""
    for name in (*split.eval_sets, "train"):
        rows = split.sets[name].filter(split.sets[name]["clip_id"] == clip_id)
        if rows.height:
            return name, rows.head(1)
    examples = ", ".join(split.sets["val"]["clip_id"].head(3).to_list())
    raise TrainerError(
        f"clip {clip_id!r} is in none of the sets of {split.dir} ({', '.join(split.sets)}); "
        f"clip ids are the clip_id column of its CSVs, e.g. {examples}"
    )


def explain_clip(
    run: ExplainableRun, clip_id: str, *, target: str = "action", class_of: str = "predicted"
) -> ClipExplanation:
    """Grad-CAM of ``target``'s predicted (or true) class on one clip, decoded as in evaluation."""
    if target not in ("action", "scene"):
        raise TrainerError(f"--target {target!r}: choose action or scene")
    if class_of not in ("predicted", "true"):
        raise TrainerError(f"--class-of {class_of!r}: choose predicted or true")
    model, cfg = run.model, run.config
    # pretrain-adv drops its scene head for fine-tuning, as evaluation does
    if target == "scene" and (model.scene_head is None or cfg.method == "pretrain-adv"):
        raise TrainerError(
            f"{run.run_dir} (method {cfg.method}) has no trained scene head to explain; use --target action"
        )
    set_name, row = _find_clip(run.split, clip_id)
    table = build_table(row, run.split.labels, run.videos_dir, run.template)
    path = Path(table.path[0])
    if not path.is_file():
        raise TrainerError(
            f"{path}: the file of clip {clip_id} is not there; pass --videos DIR (the folder of the clip "
            "files) or set HVUAUDIT_VIDEOS"
        )
    dataset = ClipDataset(
        table,
        n_scenes=model.config.n_scenes,
        n_objects=model.config.n_objects,
        settings=ClipSettings(clip_len=cfg.clip_len, frame_stride=cfg.frame_stride, size=cfg.size),
        train=False,
    )
    sample = dataset[0]
    if sample is None:
        raise TrainerError(f"{path}: clip {clip_id} could not be decoded; check the file with ffprobe")
    spec = BACKBONES[cfg.backbone]
    mean = torch.tensor(spec.mean, device=run.device)
    std = torch.tensor(spec.std, device=run.device)
    video = to_device({"video": sample["video"][None]}, run.device, mean, std)["video"]  # (1, 3, t, h, w)

    names = run.split.labels[target]
    heads = {"scene": None} if target == "scene" else None
    with torch.no_grad():
        logits = model(video, heads)[target][0].float()  # (k,)
    probabilities = torch.softmax(logits, 0) if target == "action" else torch.sigmoid(logits)
    predicted = int(logits.argmax())
    if target == "action":
        true_names = [names[int(table.action[0])]]
    else:  # the chosen scene first (the one the split is built on), then the clip's other scene tags
        tags = [names[int(i)] for i in table.scene_idx[0]]
        chosen = [table.scene[0]] if table.scene[0] in names else []
        true_names = chosen + [t for t in tags if t not in chosen]
    if class_of == "predicted":
        explained = predicted
    elif true_names:
        explained = names.index(true_names[0])
    else:
        raise TrainerError(
            f"clip {clip_id} has no scene tag, so there is no true scene to explain; use --class-of predicted"
        )

    layer_name, layer = last_conv_stage(model.backbone)
    heat = grad_cam(video, layer, lambda clip: model(clip, heads)[target][:, explained])[0]  # (t, h, w)
    return ClipExplanation(
        run_label=run.label,
        clip_id=clip_id,
        set_name=set_name,
        frames=sample["video"].permute(1, 2, 3, 0).numpy(),  # (t, h, w, 3)
        heat=heat.cpu().numpy().astype(np.float32),
        target=target,
        explained=names[explained],
        predicted=names[predicted],
        probability=float(probabilities[predicted]),
        true="|".join(true_names) or "(none)",
        layer=f"backbone.{layer_name}",
    )


def strip_frame_indices(n_frames: int, max_frames: int = MAX_STRIP_FRAMES) -> list[int]:
    """At most ``max_frames`` evenly spaced frame indices, first and last included."""
    if n_frames <= max_frames:
        return list(range(n_frames))
    return sorted({int(round(x)) for x in np.linspace(0, n_frames - 1, max_frames)})


def draw_strip(explanations: Sequence[ClipExplanation]) -> Figure:
    """One row per run: frames of the clip with the Grad-CAM heat over them."""
    columns = max(len(strip_frame_indices(len(e.frames))) for e in explanations)
    fig = new_figure(
        STRIP_CELL_PX * columns, (STRIP_CELL_PX + STRIP_ROW_TITLE_PX) * len(explanations) + TITLE_PX
    )
    first = explanations[0]
    fig.suptitle(
        f"Grad-CAM of the {first.target} score on clip {first.clip_id} ({first.set_name}), at {first.layer}; "
        "heat normalised per clip",
        fontsize=9,
    )
    rows = fig.subfigures(len(explanations), 1, squeeze=False)[:, 0]
    for subfig, explanation in zip(rows, explanations, strict=True):
        subfig.suptitle(f"{explanation.caption}\nexplained: {explanation.explained}", fontsize=8)
        axes = subfig.subplots(1, columns, squeeze=False)[0]
        blended = overlay_heat(explanation.frames, explanation.heat)
        indices = strip_frame_indices(len(explanation.frames))
        for ax in axes:
            ax.set_axis_off()
        for ax, t in zip(axes, indices, strict=False):
            ax.imshow(blended[t], interpolation="bilinear")
            ax.set_title(f"frame {t}", fontsize=7)
    return fig


def _label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=11)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def gif_frames(explanations: Sequence[ClipExplanation]) -> list[Image.Image]:
    """Animation frames: the runs side by side, each panel captioned with its labels."""
    font = _label_font()
    n_frames = max(len(e.frames) for e in explanations)
    width, height = GIF_PANEL_PX * len(explanations), GIF_PANEL_PX + GIF_LABEL_PX
    blended = [overlay_heat(e.frames, e.heat) for e in explanations]
    out = []
    for t in range(n_frames):
        canvas = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(canvas)
        for k, (explanation, video) in enumerate(zip(explanations, blended, strict=True)):
            frame = Image.fromarray(video[min(t, len(video) - 1)])  # shorter clips hold their last frame
            canvas.paste(
                frame.resize((GIF_PANEL_PX, GIF_PANEL_PX), Image.Resampling.BILINEAR),
                (k * GIF_PANEL_PX, GIF_LABEL_PX),
            )
            x = k * GIF_PANEL_PX + 3
            draw.text((x, 2), explanation.run_label, fill="black", font=font)
            draw.text(
                (x, 15), f"pred {explanation.predicted} / true {explanation.true}", fill="black", font=font
            )
        out.append(canvas)
    return out


def safe_file_stem(clip_id: str) -> str:
    """A clip id as a file name (clip ids hold letters, digits, '_', '-', '.')."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in clip_id)


def explain_clips(
    run_dirs: Sequence[str | Path],
    clip_ids: Sequence[str],
    out_dir: str | Path,
    *,
    target: str = "action",
    class_of: str = "predicted",
    checkpoint: str = "best",
    videos: str | None = None,
    device: str = "auto",
) -> list[Path]:
    """Fig. 6: ``CLIP.png`` (a strip of frames) and ``CLIP.gif`` per clip, runs one above the other."""
    if not run_dirs:
        raise TrainerError("no run folder given; pass one or two, e.g. runs/si2_baseline runs/si2_amt")
    runs = [load_explainable_run(r, checkpoint=checkpoint, videos=videos, device=device) for r in run_dirs]
    if not clip_ids:
        examples = ", ".join(runs[0].split.sets["val"]["clip_id"].head(3).to_list())
        raise TrainerError(
            f"no clip to explain; pass --clips ID (clip ids are the clip_id column of {runs[0].split.dir}/val.csv, "
            f"e.g. {examples})"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainerError(f"{out_dir}: is a file; -o takes a folder for the PNG and GIF files")
    written = []
    for clip_id in clip_ids:
        explanations = [explain_clip(run, clip_id, target=target, class_of=class_of) for run in runs]
        stem = safe_file_stem(clip_id)
        written.append(save_figure(draw_strip(explanations), out_dir / f"{stem}.png"))
        written.append(save_gif(gif_frames(explanations), out_dir / f"{stem}.gif"))
    return written


# --------------------------------------------------------------------------- all of them, for reports
def contrasting_clips(first: RunFeatures, second: RunFeatures | None, n: int) -> list[str]:
    """Up to ``n`` clip ids worth explaining: where the first run is wrong and the second right,
    then where the first is wrong, then the first clips of the set."""
    preferred: list[str] = []
    if second is not None:
        right_in_second = {
            c for c, a, p in zip(second.clip_id, second.action, second.pred, strict=True) if a == p
        }
        preferred += [
            c
            for c, a, p in zip(first.clip_id, first.action, first.pred, strict=True)
            if a != p and c in right_in_second
        ]
    preferred += [c for c, a, p in zip(first.clip_id, first.action, first.pred, strict=True) if a != p]
    preferred += list(first.clip_id)
    return list(dict.fromkeys(preferred))[:n]


def write_run_figures(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    gradcam_clips: int = 2,
    videos: str | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Every figure the runs allow, into ``out_dir``, for a report to embed; returns the files written.

    - ``curves.png`` and ``curves_losses.png`` from the runs that have a metrics.jsonl;
    - ``tsne_action.png`` and ``tsne_scene.png`` from the runs that have features.npz (val set);
    - ``gradcam/CLIP.png|gif`` for ``gradcam_clips`` clips, with the first two evaluated runs
      side by side (e.g. baseline and AMT), chosen where the first is wrong and the second right.

    A figure whose inputs are missing is skipped with a note on ``log``, never an error:
    a report shows what there is.
    """
    log = log or _stderr
    out_dir = Path(out_dir)
    run_dirs = [Path(r) for r in run_dirs]
    written: list[Path] = []
    with_metrics = [r for r in run_dirs if (r / "metrics.jsonl").is_file()]
    for r in sorted(set(run_dirs) - set(with_metrics)):
        log(f"note: {r} has no metrics.jsonl; it is left out of the curves")
    if with_metrics:
        written += plot_curves(with_metrics, out_dir / "curves.png")
    evaluated = [r for r in run_dirs if (r / "eval.json").is_file() and (r / "features.npz").is_file()]
    for r in sorted(set(run_dirs) - set(evaluated)):
        log(f"note: {r} has no eval.json/features.npz (run `hvuaudit eval {r}`); it is left out of the t-SNE")
    if not evaluated:
        return written
    embedding = compute_tsne(evaluated, max_points=max_points, seed=seed)  # the slow part, done once
    for color in ("action", "scene"):
        written.append(save_figure(draw_tsne(embedding, color), out_dir / f"tsne_{color}.png"))
    if gradcam_clips > 0:
        pair = evaluated[:2]
        features = [load_features(r) for r in pair]
        clips = contrasting_clips(features[0], features[1] if len(features) > 1 else None, gradcam_clips)
        try:
            written += explain_clips(pair, clips, out_dir / "gradcam", videos=videos)
        except TrainerError as exc:  # typically the videos are not on this machine
            log(f"note: no Grad-CAM figures: {exc}")
    return written
