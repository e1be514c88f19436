"""One epoch of training, and the one evaluation path (per-epoch validation and ``hvuaudit eval``).

Sits between :mod:`trainer.train` (which owns the loop over epochs, the
checkpoints and the run folder) and the model/objective. Plain functions in the
style of torchvision's video reference: ``train_one_epoch`` and ``evaluate``.
Batches come from :func:`trainer.dataset.collate_clips` as uint8 video; this module
moves them to the device and normalises them there. Under torchrun the model
passed to ``train_one_epoch`` is the DDP wrapper and the metrics of all
processes are reduced (:class:`trainer.distributed.DistContext`), so every
process returns the metrics of the whole epoch. It writes no files and never
imports ``hvuaudit``.

Metric keys (the same for train and the selection set, as metrics.jsonl holds them):
``loss`` (the paper's L = L_action + λ·L_scene + γ·L_object with the weights in
effect), ``loss_action``, ``loss_scene``, ``loss_object`` (raw, unweighted
losses; None without that head), ``action_acc`` (top-1), ``scene_acc`` (share of
clips with at least one scene tag whose top-scoring scene is one of their tags),
``object_map`` (mean over object classes with a positive of the average
precision; on train over the epoch's last 8192 clips), ``skipped_clips`` (clips
that failed to decode); with ``--adversary dcorr`` or ``cdcorr``, ``loss_scene_dcorr2`` (the
U-statistic dcorr² between the batch's features and scene labels, within each action for cdcorr,
averaged over the batches; ``loss`` then holds |λ| times it in place of λ·L_scene); with ``cdcorr``
also ``scene_dcorr2_coverage`` (the share of clips in a term of the penalty with a signal:
:func:`~trainer.losses.conditional_coverage`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.distributed import SINGLE, DistContext
from trainer.errors import DivergedError
from trainer.losses import Objective, check_finite

TRAIN_SCORE_CAP = 8192


def to_device(
    batch: dict[str, Any],
    device: torch.device,
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict:
    """Move a collated batch to ``device``; video becomes normalised float (b, 3, t, h, w).

    The copies are asynchronous on CUDA (the loader pins its batches).
    ``memory_format`` is the model's (``torch.channels_last_3d`` with --channels-last).
    """
    non_blocking = device.type == "cuda"
    out = {
        k: v.to(device, non_blocking=non_blocking) for k, v in batch.items() if isinstance(v, torch.Tensor)
    }
    video = out["video"].float().div_(255.0)
    video = (video - mean.view(1, 3, 1, 1, 1)) / std.view(1, 3, 1, 1, 1)
    out["video"] = video.contiguous(memory_format=memory_format)
    return out


def autocast(device: torch.device, amp_dtype: torch.dtype | None):
    """torch.autocast when mixed precision is on, else a no-op context."""
    if amp_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Mean over classes with at least one positive of the average precision (None if none)."""
    if scores.size == 0:
        return None
    has_pos = targets.sum(0) > 0
    if not has_pos.any():
        return None
    s, t = scores[:, has_pos], targets[:, has_pos].astype(np.float64)
    order = np.argsort(-s, axis=0, kind="stable")
    t_sorted = np.take_along_axis(t, order, axis=0)  # (n, k) positives in score order
    precision = np.cumsum(t_sorted, axis=0) / np.arange(1, len(t_sorted) + 1)[:, None]
    ap = (precision * t_sorted).sum(0) / t_sorted.sum(0)
    return float(ap.mean())


@dataclass
class MetricAccumulator:
    """Running sums for one pass over a loader."""

    score_cap: int | None = None
    """Keep at most this many recent clips' object scores (None = all)."""
    n: int = 0
    skipped: int = 0
    loss_sums: dict[str, float] = field(default_factory=dict)
    action_correct: int = 0
    scene_hits: int = 0
    scene_n: int = 0
    object_scores: list[np.ndarray] = field(default_factory=list)
    object_targets: list[np.ndarray] = field(default_factory=list)

    def add(self, batch: dict, outputs: dict, parts: dict, logged: torch.Tensor) -> None:
        b = int(batch["action"].shape[0])
        self.n += b
        for name, value in (("loss", logged), *((f"loss_{k}", v) for k, v in parts.items())):
            self.loss_sums[name] = self.loss_sums.get(name, 0.0) + float(value) * b
        self.action_correct += int((outputs["action"].argmax(1) == batch["action"]).sum())
        if "scene" in outputs:
            target = batch["scene"]
            has_tag = target.sum(1) > 0
            hit = target.gather(1, outputs["scene"].argmax(1, keepdim=True)).squeeze(1) > 0
            self.scene_hits += int((hit & has_tag).sum())
            self.scene_n += int(has_tag.sum())
        if "object" in outputs:
            self.object_scores.append(outputs["object"].float().cpu().numpy())
            self.object_targets.append(batch["object"].cpu().numpy().astype(np.uint8))
            if self.score_cap is not None:
                while sum(len(x) for x in self.object_scores) - len(self.object_scores[0]) >= self.score_cap:
                    self.object_scores.pop(0)
                    self.object_targets.pop(0)

    def reduce(self, dist_ctx: DistContext) -> MetricAccumulator:
        """The sums over every process, on every process; object scores only on rank 0 (mAP there)."""
        if not dist_ctx.enabled:
            return self
        counts = dist_ctx.all_gather(
            (self.n, self.skipped, self.loss_sums, self.action_correct, self.scene_hits, self.scene_n)
        )
        scores = dist_ctx.gather_on_main((self.object_scores, self.object_targets))
        total = MetricAccumulator()
        for n, skipped, loss_sums, action_correct, scene_hits, scene_n in counts:
            total.n += n
            total.skipped += skipped
            for name, value in loss_sums.items():
                total.loss_sums[name] = total.loss_sums.get(name, 0.0) + value
            total.action_correct += action_correct
            total.scene_hits += scene_hits
            total.scene_n += scene_n
        for object_scores, object_targets in scores or []:
            total.object_scores += object_scores
            total.object_targets += object_targets
        return total

    def result(self) -> dict[str, Any]:
        def mean(name: str) -> float | None:
            return self.loss_sums[name] / self.n if self.n and name in self.loss_sums else None

        object_map = None
        if self.object_scores:
            object_map = mean_average_precision(
                np.concatenate(self.object_scores), np.concatenate(self.object_targets)
            )
        return {
            "loss": mean("loss"),
            "loss_action": mean("loss_action"),
            "loss_scene": mean("loss_scene"),
            "loss_object": mean("loss_object"),
            # --adversary dcorr: the batch-level dcorr² penalty of an adversarial head (mean over batches)
            **{name: mean(name) for name in sorted(self.loss_sums) if name.endswith("_dcorr2")},
            # --adversary cdcorr: the share of the clips in an action with a term of the penalty
            **{
                name.removeprefix("loss_"): mean(name)
                for name in sorted(self.loss_sums)
                if name.endswith("_dcorr2_coverage")
            },
            "action_acc": self.action_correct / self.n if self.n else None,
            "scene_acc": self.scene_hits / self.scene_n if self.scene_n else None,
            "object_map": object_map,
            "skipped_clips": self.skipped,
            "n": self.n,
        }


def train_one_epoch(
    model: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    loader: Sequence | torch.utils.data.DataLoader,
    device: torch.device,
    epoch: int,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    step_offset: int = 0,
    total_steps: int = 1,
    scene: bool = True,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
    dist_ctx: DistContext = SINGLE,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train for one pass over ``loader``; returns the epoch's metrics (see the module docstring).

    ``(step_offset + step) / total_steps`` is the training progress that the DANN
    ramp of adversarial heads follows. ``scheduler`` is stepped once per batch
    (one-cycle), also for batches that were skipped, so the step count matches
    ``len(loader)``. ``scene=False`` trains without the scene head. Raises
    :class:`trainer.errors.DivergedError` on a non-finite loss (in every process
    under torchrun). The losses are computed in float32 whatever ``amp_dtype``.
    """
    model.train()
    acc = MetricAccumulator(score_cap=TRAIN_SCORE_CAP)
    weights = objective.head_weights(0.0, scene=scene)
    for step, batch in enumerate(loader):
        acc.skipped += batch["skipped"]
        weights = objective.head_weights((step_offset + step) / max(1, total_steps), scene=scene)
        # BatchNorm in the heads needs two clips; under DDP all processes take a step or none does,
        # since every forward and backward is a collective
        if dist_ctx.min_over_processes(batch["n"]) >= 2:
            data = to_device(batch, device, mean, std, memory_format=memory_format)
            with autocast(device, amp_dtype):
                outputs = model(data["video"], {k: w.grl for k, w in weights.items()})
            outputs = {k: v.float() for k, v in outputs.items()}  # a no-op without mixed precision
            total, parts, logged = objective(outputs, data, weights)
            if dist_ctx.min_over_processes(int(bool(torch.isfinite(total)))) == 0:
                check_finite(parts, total, epoch=epoch, step=step)  # raises in the process that diverged
                raise DivergedError(
                    f"the loss became non-finite in another training process at epoch {epoch}, step {step}"
                )
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None and scaler.is_enabled():
                scaler.scale(total).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                total.backward()
                optimizer.step()
            acc.add(
                data,
                {k: v.detach() for k, v in outputs.items()},
                {k: v.detach() for k, v in parts.items()},
                logged,
            )
            if on_step is not None:
                on_step(step, float(logged))
        elif on_step is not None:
            on_step(step, float("nan"))
        if scheduler is not None:
            scheduler.step()
    metrics = acc.reduce(dist_ctx).result()
    metrics["lambda_eff"] = weights["scene"].effective if "scene" in weights else 0.0
    return metrics


@dataclass
class EvalOutput:
    """What :func:`evaluate` returns: metrics, and per-clip arrays when ``collect=True``."""

    metrics: dict[str, Any]
    index: np.ndarray | None = None  # (n,) int64 row of each decoded clip in the dataset's table
    features: np.ndarray | None = None  # (n, d) float32 pooled backbone features
    action_logits: np.ndarray | None = None  # (n, n_actions) float32
    scene_logits: np.ndarray | None = None  # (n, n_scenes) float32, when the scene head is evaluated
    object_logits: np.ndarray | None = None  # (n, n_objects) float32, when the object head is evaluated


@torch.no_grad()
def evaluate(
    model: nn.Module,
    objective: Objective,
    loader: Sequence | torch.utils.data.DataLoader,
    device: torch.device,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    scene: bool = True,
    amp_dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
    dist_ctx: DistContext = SINGLE,
    collect: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> EvalOutput:
    """Run the model over ``loader`` in eval mode: metrics, and with ``collect`` the per-clip arrays.

    The loss uses the objective's full weights (the DANN ramp at its end). Under
    torchrun pass the unwrapped model (no collective per batch, so the shares of
    the processes may differ in length) and each process's share of the clips;
    the metrics are those of all clips. ``collect`` is for one process only.
    """
    assert not (collect and dist_ctx.enabled), "per-clip arrays are collected in one process only"
    model.eval()
    acc = MetricAccumulator()
    weights = objective.head_weights(1.0, scene=scene)
    kept: dict[str, list[np.ndarray]] = {"index": [], "features": [], "action": [], "scene": [], "object": []}
    for step, batch in enumerate(loader):
        acc.skipped += batch["skipped"]
        if batch["n"] == 0:
            continue
        data = to_device(batch, device, mean, std, memory_format=memory_format)
        with autocast(device, amp_dtype):
            outputs = model(data["video"], {k: None for k in weights})
        outputs = {k: v.float() for k, v in outputs.items()}
        _, parts, logged = objective(outputs, data, weights)
        acc.add(data, outputs, parts, logged)
        if collect:
            kept["index"].append(batch["index"].numpy())
            for name in ("features", "action", "scene", "object"):
                if name in outputs:
                    kept[name].append(outputs[name].cpu().numpy().astype(np.float32))
        if on_step is not None:
            on_step(step, float(logged))
    out = EvalOutput(metrics=acc.reduce(dist_ctx).result())
    if collect:

        def cat(name: str, width: int | None = None) -> np.ndarray | None:
            if kept[name]:
                return np.concatenate(kept[name])
            return None if width is None else np.zeros((0, width), dtype=np.float32)

        out.index = cat("index") if kept["index"] else np.zeros(0, dtype=np.int64)
        out.features = cat("features", 0)
        out.action_logits = cat("action", 0)
        out.scene_logits = cat("scene")
        out.object_logits = cat("object")
    return out
