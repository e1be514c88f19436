"""Fig. 6: Grad-CAM saliency of a run's model on clips, as PNG strips and GIFs.

Rebuilds the model from a checkpoint and decodes clips with the trainer's own data code,
so a clip is cropped and normalised exactly as in evaluation. The one figure module
that needs torch. Never imports ``hvuaudit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from hvucontracts.splitfolder import DEFAULT_TEMPLATE, SplitFolder, load_split
from hvucontracts.videofolder import folder_template
from hvueval.errors import EvalError
from hvueval.evaluate import load_run_model
from hvueval.plotting import (
    GIF_LABEL_PX,
    GIF_PANEL_PX,
    HEAT_ALPHA,
    MAX_STRIP_FRAMES,
    STRIP_CELL_PX,
    STRIP_ROW_TITLE_PX,
    TITLE_PX,
    new_figure,
    run_label,
    save_figure,
    save_gif,
)
from trainer.config import TrainConfig
from trainer.dataset import ClipDataset, ClipSettings
from trainer.engine import to_device
from trainer.models import BACKBONES, AMTModel
from trainer.utils import resolve_device
from trainer.videos import build_table, resolve_videos_dir


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
        raise EvalError(f"{type(backbone).__name__} has no Conv3d layer; Grad-CAM needs a 3D CNN")
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
    split: SplitFolder
    videos_dir: Path
    template: str
    device: torch.device


def load_explainable_run(
    run_dir: str | Path, *, checkpoint: str = "best", videos: str | None = None, device: str = "auto"
) -> ExplainableRun:
    run_dir = Path(run_dir)
    model, ckpt = load_run_model(run_dir, checkpoint)
    config = TrainConfig.from_json(ckpt["config"])
    split_dir = ckpt["config"].get("split_dir") or config.split_dir
    assert split_dir is not None, "training refuses to start without --split, so every checkpoint has one"
    split = load_split(split_dir)
    videos_dir, _ = resolve_videos_dir(videos, split.manifest, recorded=ckpt["config"].get("videos_dir"))
    dev = resolve_device(device)
    return ExplainableRun(
        run_dir=run_dir,
        label=run_label(run_dir, ckpt["config"]),
        model=model.to(dev).eval(),
        config=config,
        split=split,
        videos_dir=videos_dir,
        template=folder_template(videos_dir) or config.name_template or DEFAULT_TEMPLATE,
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


def _find_clip(split: SplitFolder, clip_id: str) -> tuple[str, Any]:
    """(set name, one-row DataFrame) of a clip id, looking in the evaluation sets first."""
    for name in (*split.eval_sets, "train"):
        rows = split.sets[name].filter(split.sets[name]["clip_id"] == clip_id)
        if rows.height:
            return name, rows.head(1)
    examples = ", ".join(split.sets["val"]["clip_id"].head(3).to_list())
    raise EvalError(
        f"clip {clip_id!r} is in none of the sets of {split.dir} ({', '.join(split.sets)}); "
        f"clip ids are the clip_id column of its CSVs, e.g. {examples}"
    )


def explain_clip(
    run: ExplainableRun, clip_id: str, *, target: str = "action", class_of: str = "predicted"
) -> ClipExplanation:
    """Grad-CAM of ``target``'s predicted (or true) class on one clip, decoded as in evaluation."""
    if target not in ("action", "scene"):
        raise EvalError(f"--target {target!r}: choose action or scene")
    if class_of not in ("predicted", "true"):
        raise EvalError(f"--class-of {class_of!r}: choose predicted or true")
    model, cfg = run.model, run.config
    # pretrain-adv drops its scene head for fine-tuning, as evaluation does
    if target == "scene" and (model.scene_head is None or cfg.method == "pretrain-adv"):
        raise EvalError(
            f"{run.run_dir} (method {cfg.method}) has no trained scene head to explain; use --target action"
        )
    set_name, row = _find_clip(run.split, clip_id)
    table = build_table(row, run.split.labels, run.videos_dir, run.template)
    path = Path(table.path[0])
    if not path.is_file():
        raise EvalError(
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
        raise EvalError(f"{path}: clip {clip_id} could not be decoded; check the file with ffprobe")
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
        raise EvalError(
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
        raise EvalError("no run folder given; pass one or two, e.g. runs/si2_baseline runs/si2_amt")
    runs = [load_explainable_run(r, checkpoint=checkpoint, videos=videos, device=device) for r in run_dirs]
    if not clip_ids:
        examples = ", ".join(runs[0].split.sets["val"]["clip_id"].head(3).to_list())
        raise EvalError(
            "no clip to explain; pass --clips ID (clip ids are the clip_id column of "
            f"{runs[0].split.dir}/val.csv, "
            f"e.g. {examples})"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EvalError(f"{out_dir}: is a file; -o takes a folder for the PNG and GIF files")
    written = []
    for clip_id in clip_ids:
        explanations = [explain_clip(run, clip_id, target=target, class_of=class_of) for run in runs]
        stem = safe_file_stem(clip_id)
        written.append(save_figure(draw_strip(explanations), out_dir / f"{stem}.png"))
        written.append(save_gif(gif_frames(explanations), out_dir / f"{stem}.gif"))
    return written
