"""Evaluation of a run folder: eval.json and features.npz (``hvuaudit eval runs/NAME``).

Last step of the trainer, read by the report. Rebuilds the model from a
checkpoint alone, runs it over the split's evaluation sets ("val" and any
``eval_sets`` of the manifest) through :func:`trainer.engine.evaluate` (the
same function as the per-epoch validation), and computes per set: top-1 (against the primary action,
the headline, and against any of the clip's action tags), top-5,
mean and per-class accuracy, seen/unseen (action, scene) pair accuracy, the
scene head's accuracy, the object head's mAP, and dcorr² (V and U statistics)
between the features and the scene labels with :mod:`hvueval.dcorr`.
Never imports ``hvuaudit``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hvucontracts import runfolder
from hvucontracts.files import write_atomically, write_json_atomically
from hvucontracts.splitfolder import DEFAULT_TEMPLATE, SELECT, SplitFolder, load_split
from hvucontracts.videofolder import folder_template
from hvueval.dcorr import distance_correlation_stats
from hvueval.errors import EvalError, MissingArtifactError
from trainer.config import TrainConfig
from trainer.dataset import ClipDataset, ClipSettings, make_loader
from trainer.engine import evaluate
from trainer.losses import Objective
from trainer.models import BACKBONES, AMTModel, ModelConfig, build_model
from trainer.utils import code_version, load_checkpoint, resolve_amp, resolve_device
from trainer.videos import (
    ClipTable,
    build_table,
    preflight,
    require_usable,
    resolve_videos_dir,
    write_preflight,
)

TOP_LEVEL = ("top1", "top1_any", "top5", "mean_class_acc", "dcorr2", "dcorr2_u", "dcorr_n")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def checkpoint_name(run_dir: Path, checkpoint: str) -> str:
    """``--checkpoint`` as best or last when it is the path of the run's own best.pt or checkpoint.pt."""
    if checkpoint in runfolder.CHECKPOINTS:
        return checkpoint
    given = Path(checkpoint)
    for name, file in runfolder.CHECKPOINTS.items():
        own = run_dir / file
        if given.is_file() and own.is_file() and given.resolve() == own.resolve():
            return name
    return checkpoint


def checkpoint_file(run_dir: Path, checkpoint: str) -> Path:
    """The file of ``--checkpoint``: best (best.pt), last (checkpoint.pt) or the path of a checkpoint file."""
    if checkpoint in runfolder.CHECKPOINTS:
        path = run_dir / runfolder.CHECKPOINTS[checkpoint]
        if not path.is_file():
            raise MissingArtifactError(
                f"{path}: missing, so {run_dir} has no {checkpoint} checkpoint; "
                f"train it with `hvuaudit train --out {run_dir}` (or --resume it)"
            )
        return path
    path = Path(checkpoint)
    if not path.is_file():
        raise EvalError(
            f"--checkpoint {checkpoint!r}: not best, last or an existing checkpoint file",
            hint=f"best is {runfolder.BEST} (chosen on the selection set), last is {runfolder.CHECKPOINT}",
        )
    return path


def load_run_model(run_dir: str | Path, checkpoint: str = "best") -> tuple[AMTModel, dict[str, Any]]:
    """The model of a run, rebuilt from ``best.pt``, ``checkpoint.pt`` or a checkpoint file alone (on CPU).

    A checkpoint file must come from this run (the same ``created_at`` in its config as the run's
    config.json): its scores are written into the run folder, and the report files them under the run's
    settings."""
    run_dir = runfolder.require_run_dir(run_dir)
    path = checkpoint_file(run_dir, checkpoint)
    ckpt = load_checkpoint(path)
    if checkpoint not in runfolder.CHECKPOINTS:
        mine = runfolder.read_config_or_empty(run_dir).get("created_at")
        theirs = ckpt["config"].get("created_at")
        if mine is None or theirs != mine:
            raise EvalError(
                f"--checkpoint {path}: a checkpoint of another run (started {theirs}, {run_dir} {mine}); its "
                f"scores would be filed under {run_dir}'s settings",
                hint=f"evaluate it in its own run folder, or copy it into {run_dir} only if it is this run's",
            )
    model = build_model(ModelConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model, ckpt


def selection_steered_last(config: dict[str, Any]) -> bool:
    """Whether the last epoch too depends on the selection set: a plateau schedule steps on it, and an early
    stop ends the run on it."""
    return config.get("schedule", "plateau") == "plateau" or bool(config.get("patience", 5))


def provenance(checkpoint: str, ckpt: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """What produced the scores of eval.json, and what report keeps apart: the checkpoint, the set that
    selected it, the starting weights, the backbone and the split's kind."""
    config = ckpt["config"]
    selection = config.get("selection_set", "val")  # runs from before select.csv selected on val
    pretrained = config.get("pretrained")
    recorded = config.get("pretraining")
    return {
        "checkpoint": checkpoint if checkpoint in runfolder.CHECKPOINTS else str(Path(checkpoint).resolve()),
        "checkpoint_epoch": ckpt["state"]["epoch"],
        "selection_set": selection,
        # scored on the set that chose best.pt, or that stepped the schedule or stopped the run: optimistic
        "selection_scored": selection in names and (checkpoint != "last" or selection_steered_last(config)),
        "pretraining": recorded if recorded or not pretrained else {"source": pretrained, "sha256": None},
        "backbone": config["backbone"],
        "variant": ckpt["split"].get("variant"),
        "strict": bool(ckpt["split"].get("strict", False)),
    }


def topk_accuracy(logits: np.ndarray, target: np.ndarray, k: int) -> float | None:
    if len(target) == 0:
        return None
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((top == target[:, None]).any(1).mean())


def any_of_accuracy(logits: np.ndarray, true_actions: list[np.ndarray]) -> float | None:
    """Share of clips whose top-scoring action is any of their action tags (a multi-label clip is right
    when the head names one of its other actions); None without clips."""
    if len(true_actions) == 0:
        return None
    pred = logits.argmax(1)
    return float(np.mean([int(p) in set(tags.tolist()) for p, tags in zip(pred, true_actions, strict=True)]))


def per_class_accuracy(pred: np.ndarray, target: np.ndarray, names: list[str]) -> dict[str, float]:
    """Accuracy of each action class present in ``target``."""
    return {names[c]: float((pred[target == c] == c).mean()) for c in np.unique(target)}


def _clip_scenes(table: ClipTable, i: int) -> set[str]:
    """The scene(s) of one clip: the chosen scene, else its scene tags."""
    if table.scene[i]:
        return {table.scene[i]}
    return {s for s in table.scenes[i].split("|") if s}


def pair_accuracy(
    pred: np.ndarray, rows: np.ndarray, table: ClipTable, train: ClipTable, action_names: list[str]
) -> dict[str, Any]:
    """Accuracy on clips whose (action, scene) pair occurs in training vs not.

    A clip's scenes are its chosen scene, else its scene tags; it is "seen" when
    any of its (action, scene) pairs occurs in train.csv. Clips without a scene
    are left out.
    """
    train_pairs = {
        (action_names[train.action[i]], s) for i in range(len(train)) for s in _clip_scenes(train, i)
    }
    seen: list[int] = []
    unseen: list[int] = []
    for k, i in enumerate(rows):
        scenes = _clip_scenes(table, i)
        if not scenes:
            continue
        action = action_names[table.action[i]]
        (seen if any((action, s) in train_pairs for s in scenes) else unseen).append(k)
    correct = pred == table.action[rows]

    def acc(ks: list[int]) -> float | None:
        return float(correct[ks].mean()) if ks else None

    return {
        "seen_pair_acc": acc(seen),
        "unseen_pair_acc": acc(unseen),
        "seen_n": len(seen),
        "unseen_n": len(unseen),
    }


def scene_dcorr(
    features: np.ndarray, rows: np.ndarray, table: ClipTable, n_scenes: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """dcorr² (V and U) of the features against the one-hot chosen scene.

    When no clip of the set has a chosen scene (the default split), the multi-hot
    scene tags are used instead; ``dcorr_labels`` says which.
    """
    chosen = np.array([table.scene[i] for i in rows], dtype=str)
    mask = chosen != ""
    if mask.any():
        labels: np.ndarray = chosen[mask]
        kind = "scene"
        distinct = len(np.unique(labels))
    else:
        multi = np.zeros((len(rows), n_scenes), dtype=np.uint8)
        for k, i in enumerate(rows):
            multi[k, table.scene_idx[i]] = 1
        mask = multi.any(1)
        labels = multi[mask]
        kind = "scenes"
        distinct = len(np.unique(labels, axis=0)) if len(labels) else 0
    out: dict[str, Any] = {"dcorr2": None, "dcorr2_u": None, "dcorr_n": int(mask.sum()), "dcorr_labels": kind}
    if mask.sum() < 4 or distinct < 2:
        out["dcorr_note"] = (
            "not measured: fewer than 4 clips with a scene (the U-statistic needs 4) or one scene only"
        )
        return out
    x = np.ascontiguousarray(features[mask], dtype=np.float32)
    stats = distance_correlation_stats(x, labels)  # V and U in one blockwise pass
    out["dcorr2"], out["dcorr2_u"] = float(stats.dcorr2), float(stats.dcorr2_u)
    return out


def evaluate_run(
    run_dir: str | Path,
    *,
    checkpoint: str = "best",
    videos: str | None = None,
    sets: list[str] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a run folder on its split's evaluation sets; writes eval.json and features.npz.

    Returns the eval.json document. ``sets`` defaults to every evaluation set of
    the split ("val" first). features.npz holds, per set S: ``S_features`` (n, d)
    float32, ``S_action`` and ``S_pred`` (n,) int64, ``S_scene``, ``S_scenes`` and
    ``S_clip_id`` (n,) str; plus ``sets`` and ``action_names``.
    """
    log = log or _stderr
    started = time.perf_counter()
    run_dir = Path(run_dir)
    model, ckpt = load_run_model(run_dir, checkpoint)
    cfg = TrainConfig.from_json(ckpt["config"])
    split_dir = ckpt["config"].get("split_dir") or cfg.split_dir
    assert split_dir is not None, "training refuses to start without --split, so every checkpoint has one"
    split: SplitFolder = load_split(split_dir)
    if split.manifest != ckpt["split"]:
        log(f"warning: {split.dir}/manifest.json changed since {run_dir} was trained")
    names = sets or list(split.eval_sets)
    unknown = [n for n in names if n not in split.sets or n == "train"]
    if unknown:
        choices = [*split.eval_sets, *([SELECT] if SELECT in split.sets else [])]
        raise EvalError(
            f"--sets: {', '.join(unknown)} is not an evaluation set of {split.dir}; "
            f"choose from {', '.join(choices)}"
        )
    checkpoint = checkpoint_name(run_dir, checkpoint)
    scored_as = provenance(checkpoint, ckpt, names)
    if scored_as["selection_set"] == "val":
        log(
            f"warning: {run_dir} was trained selecting on val, the test pairs (its split had no select.csv); "
            "eval.json records it"
        )
    if scored_as["selection_scored"]:
        selection = scored_as["selection_set"]
        log(
            f"warning: {selection} chose this run's best.pt, learning-rate drops or early stop, so its "
            f"scores on {selection} are optimistic"
            + (
                "; a split with select.csv (`hvuaudit split`, --select-fraction) gives val scores that are "
                "not"
                if selection == "val"
                else ""
            )
        )
    videos_dir, _ = resolve_videos_dir(videos, split.manifest, recorded=ckpt["config"].get("videos_dir"))
    # a prepared folder given as --videos names its clips its own way
    template = folder_template(videos_dir) or cfg.name_template or DEFAULT_TEMPLATE

    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    amp_dtype = resolve_amp(cfg.amp if dev.type == "cuda" else "off", dev)  # CPU evaluates in float32
    model.to(dev)
    spec = BACKBONES[cfg.backbone]
    mean, std = torch.tensor(spec.mean, device=dev), torch.tensor(spec.std, device=dev)
    objective = Objective(
        lambda_=cfg.lambda_ or 0.0,
        gamma=cfg.gamma or 0.0,
        adversary=cfg.adversary,
        head_reduction=cfg.head_loss_reduction,
    )
    scene_on = model.scene_head is not None and cfg.method != "pretrain-adv"
    settings = ClipSettings(clip_len=cfg.clip_len, frame_stride=cfg.frame_stride, size=cfg.size)
    mc = model.config
    action_names = split.labels["action"]
    train_table = build_table(split.sets["train"], split.labels, videos_dir, template)

    tables = {n: build_table(split.sets[n], split.labels, videos_dir, template) for n in names}
    workers = cfg.workers if workers is None else workers
    checks = preflight(tables, threads=max(1, workers))
    write_preflight(
        run_dir,
        checks,
        videos_dir=videos_dir,
        template=template,
        files=(runfolder.EVAL_PREFLIGHT, runfolder.EVAL_PREFLIGHT_PROBLEMS),
    )
    require_usable(
        checks,
        min_found=cfg.min_found,
        videos_dir=videos_dir,
        template=template,
        report=run_dir / runfolder.EVAL_PREFLIGHT_PROBLEMS,
    )

    results: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for name in names:
        table = tables[name].subset(checks[name].usable)
        dataset = ClipDataset(
            table, n_scenes=mc.n_scenes, n_objects=mc.n_objects, settings=settings, train=False
        )
        loader = make_loader(
            dataset, batch_size=batch_size or cfg.eval_batch_size or cfg.batch_size, workers=workers,
            seed=cfg.seed, shuffle=False, pin_memory=dev.type == "cuda",
        )  # fmt: skip
        out = evaluate(
            model,
            objective,
            loader,
            dev,
            mean=mean,
            std=std,
            scene=scene_on,
            amp_dtype=amp_dtype,
            collect=True,
        )
        rows = out.index
        # collect=True fills in the per-clip arrays
        assert rows is not None and out.features is not None and out.action_logits is not None
        target = table.action[rows]
        pred = out.action_logits.argmax(1) if len(rows) else np.zeros(0, dtype=np.int64)
        per_class = per_class_accuracy(pred, target, action_names)
        metrics: dict[str, Any] = {
            "n": int(len(rows)),
            "n_rows": checks[name].total,
            "n_missing": len(checks[name].missing),
            "n_unreadable": len(checks[name].unreadable),
            "skipped_clips": out.metrics["skipped_clips"],
            "top1": topk_accuracy(out.action_logits, target, 1),
            "top1_any": any_of_accuracy(out.action_logits, [table.action_idx[i] for i in rows]),
            "top5": topk_accuracy(out.action_logits, target, 5),
            "mean_class_acc": float(np.mean(list(per_class.values()))) if per_class else None,
            "per_class": per_class,
            "scene_acc": out.metrics["scene_acc"],
            "object_map": out.metrics["object_map"],
            "loss_action": out.metrics["loss_action"],
        }
        metrics |= scene_dcorr(out.features, rows, table, mc.n_scenes, log)
        metrics |= pair_accuracy(pred, rows, table, train_table, action_names)
        results[name] = metrics
        arrays |= {
            f"{name}_features": out.features.astype(np.float32),
            f"{name}_action": target.astype(np.int64),
            f"{name}_pred": pred.astype(np.int64),
            f"{name}_scene": np.array([table.scene[i] for i in rows], dtype=str),
            f"{name}_scenes": np.array([table.scenes[i] for i in rows], dtype=str),
            f"{name}_clip_id": np.array([table.clip_id[i] for i in rows], dtype=str),
        }
        log(
            f"{name}: n={metrics['n']} top1={metrics['top1']} dcorr2={metrics['dcorr2']} "
            f"({metrics['n_missing']} missing, {metrics['skipped_clips']} skipped)"
        )

    main = results.get("val") or results[names[0]]
    doc: dict[str, Any] = {
        "format": runfolder.EVAL_FORMAT,
        "run": str(run_dir),
        **scored_as,
        "sets": results,
        **{key: main[key] for key in TOP_LEVEL},
        "features": runfolder.FEATURES,
        "videos_dir": str(videos_dir),
        "code_version": code_version(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    arrays["sets"] = np.array(names, dtype=str)
    arrays["action_names"] = np.array(action_names, dtype=str)

    def save_features(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a handle: np.savez would add ".npz" to a path
            # no allow_pickle argument: numpy 1.26 has none here and would save it as an array
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    write_atomically(run_dir / runfolder.FEATURES, save_features)
    write_json_atomically(run_dir / runfolder.EVAL, doc)
    return doc
