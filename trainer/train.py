"""The training run: from a TrainConfig and a split folder to a run folder.

Owns the loop over epochs, the run folder (config.json, metrics.jsonl,
checkpoint.pt, best.pt, the pre-flight report), exact resume, the learning-rate
schedule and early stopping. Every check of the inputs (options, split folder,
videos directory, pretrained weights, pre-flight) runs before training starts. One epoch is
:func:`trainer.engine.train_one_epoch`, validation is :func:`trainer.engine.evaluate`.
Only this module writes files during training.

One process, or several started by torchrun (``python -m torch.distributed.run
... -m trainer train``, or ``hvuaudit train --nproc-per-node N``): then the
model trains under DistributedDataParallel, each process decodes its share of
the clips, the metrics are reduced over all processes, the learning rate is
scaled by the number of processes, and only rank 0 writes. Never imports ``hvuaudit``.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hvucontracts import runfolder
from hvucontracts.files import (
    read_owner_marker,
    write_atomically,
    write_json_atomically,
    write_owner_marker,
    write_text_atomically,
)
from hvucontracts.runfolder import CHECKPOINT_FORMAT, RUN_FILES, RUN_KIND
from hvucontracts.splitfolder import SplitFolder, load_split, resolve_name_template
from trainer.config import ConfigError, TrainConfig, diff_for_resume, resolve_config
from trainer.dataset import ClipDataset, ClipSettings, make_loader
from trainer.distributed import DistContext, context_from_env, init_distributed, shutdown_distributed
from trainer.engine import evaluate, train_one_epoch
from trainer.errors import ConflictError, MissingArtifactError, TrainerError
from trainer.losses import Objective, reinit_schedule
from trainer.models import (
    BACKBONES,
    AMTModel,
    ModelConfig,
    build_model,
    load_pretrained,
    pretraining_record,
    reinitialise,
)
from trainer.utils import (
    code_version,
    load_checkpoint,
    resolve_amp,
    resolve_device,
    rng_state,
    save_atomic,
    seed_everything,
    set_rng_state,
)
from trainer.videos import (
    build_table,
    merge_preflight,
    preflight,
    require_usable,
    resolve_videos_dir,
    write_preflight,
)

RUNAWAY_FACTOR = 10.0
# --adversary cdcorr: below this share of the training clips in a term of the penalty, epoch 1 warns
LOW_COVERAGE = 0.5
# --warmup-epochs with plateau: the first batch trains at this share of --lr (torchvision's video reference)
WARMUP_START = 0.001

Log = Callable[[str], None]


class ResumeMismatchError(TrainerError):
    """--resume with settings that differ from the run's (exit 3)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _quiet(message: str) -> None:
    """The log of every process but rank 0."""


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved settings of a run, from its checkpoint.pt (what --resume continues)."""
    ckpt = load_checkpoint(Path(run_dir) / runfolder.CHECKPOINT)
    return TrainConfig.from_json(ckpt["config"])


def default_out(split: SplitFolder, cfg: TrainConfig) -> str:
    variant = split.manifest.get("variant", "split")
    return str(Path("runs") / f"{variant}_{cfg.method}_{cfg.backbone}_seed{cfg.seed}")


def _check_run_dir(out: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start a run where it would replace a file it did not write.

    Any file with a run file's name is refused unless ``force`` is given *and* the folder's
    ownership marker proves the run files are this trainer's; other files are never touched.
    """
    if resume:
        return
    if out.exists() and not out.is_dir():
        raise ConflictError(f"--out {out} exists and is not a folder; choose a folder for the run")
    existing = [name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]
    if not existing:
        return
    marker = read_owner_marker(out)
    if marker is None or marker.get("kind") != RUN_KIND:
        raise ConflictError(
            f"{out} holds {', '.join(existing)} that hvuaudit train did not write (no run marker); "
            "they are left alone: choose another --out"
        )
    if not force:
        raise ConflictError(
            f"{out} already holds a run ({', '.join(existing)}); pass --resume to continue it, "
            "--force to overwrite it, or choose another --out"
        )


def _prepare_run_dir(out: Path, *, resume: bool, force: bool) -> None:
    if resume:
        return
    _check_run_dir(out, resume=resume, force=force)
    out.mkdir(parents=True, exist_ok=True)
    if force:
        for name in RUN_FILES:
            path = out / name
            if path.is_file() and not path.is_symlink():
                path.unlink()
        events = out / runfolder.TENSORBOARD
        if events.is_dir() and not events.is_symlink():  # a linked folder is someone else's: never emptied
            for path in events.glob(runfolder.TENSORBOARD_EVENTS):
                if path.is_file() and not path.is_symlink():  # the event files of the run replaced, only them
                    path.unlink()
    # The marker before any run file: it is what lets a later --force replace them, and only them.
    write_owner_marker(out, RUN_KIND, RUN_FILES)


def _tensorboard_writer_class():
    """torch's SummaryWriter; ConfigError (exit 3) with the install command when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch.utils.tensorboard imports the tensorboard package
        raise ConfigError(
            f"--tensorboard needs the tensorboard package, which is not installed ({exc}); "
            "pip install 'hvuaudit[tensorboard]' (or pip install tensorboard), or train without the event "
            "files (--no-tensorboard, also when resuming such a run): metrics.jsonl holds the same numbers"
        ) from exc
    return SummaryWriter


def _tensorboard_scalars(line: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a metrics.jsonl line as TensorBoard tags: train/loss, select/action_acc, lr..."""
    out: dict[str, float] = {}
    for key, value in line.items():
        if key == "epoch":
            continue
        if isinstance(value, dict):
            out |= _tensorboard_scalars(value, f"{prefix}{key}/")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _check_resume(out: Path, cfg: TrainConfig, split: SplitFolder) -> dict[str, Any]:
    path = out / runfolder.CHECKPOINT
    if not path.is_file():
        raise MissingArtifactError(f"{path}: no checkpoint to resume from; drop --resume to start the run")
    ckpt = load_checkpoint(path)
    saved = TrainConfig.from_json(ckpt["config"])
    diffs = diff_for_resume(saved, cfg)
    assert cfg.lambda_ is not None  # cfg is resolved (resolve_config fills in the weights)
    schedule_needs_epochs = cfg.schedule == "onecycle" or (cfg.adv_schedule == "dann" and cfg.lambda_ < 0)
    if saved.epochs != cfg.epochs and schedule_needs_epochs:
        diffs.append(("epochs", saved.epochs, cfg.epochs))
    if ckpt["split"] != split.manifest:
        diffs.append(("split (manifest.json)", "the run's split", f"{split.dir}/manifest.json"))
    processes = next((d for d in diffs if d[0] == "world_size"), None)
    if processes is not None:
        _, was, now = processes
        raise ResumeMismatchError(
            f"--resume: the run in {out} was trained by {was} process(es), this command starts {now}; "
            f"the global batch and the learning rate depend on it, so resume it with {was} "
            f"(`hvuaudit train --nproc-per-node {was} --out {out} --resume`)"
        )
    if diffs:
        name, was, now = diffs[0]
        more = f" (and {len(diffs) - 1} more: {', '.join(d[0] for d in diffs[1:])})" if len(diffs) > 1 else ""
        raise ResumeMismatchError(
            f"--resume: setting '{name}' differs: the run in {out} has {was!r}, this command gives "
            f"{now!r}{more}. "
            "Drop the option to continue the run as it was, or start a new run with another --out"
        )
    return ckpt


def _metrics_epoch(line: str) -> int | None:
    """The epoch of one metrics.jsonl line, or None when the line is damaged."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    epoch = doc.get("epoch") if isinstance(doc, dict) else None
    return epoch if isinstance(epoch, int) else None


def _truncate_metrics(path: Path, last_epoch: int, log: Log) -> None:
    """Keep the metrics lines of the checkpoint's epochs; mend what a kill or a damaged disk left.

    Lines of epochs after the checkpoint (a run killed between the two writes) are dropped.
    Damaged lines (a write cut short, stray bytes) are dropped too, and the file as it was
    is kept beside it as ``metrics.jsonl.damaged-N`` (the first N not taken), so that nothing
    is lost, not even by a second repair.
    """
    if not path.exists():
        return
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    damaged = [n for n, line in enumerate(lines, start=1) if _metrics_epoch(line) is None]
    keep = [line for line in lines if (_metrics_epoch(line) or last_epoch + 1) <= last_epoch]
    if damaged:
        backup = next(
            path.with_name(f"{path.name}.damaged-{n}")
            for n in itertools.count(1)
            if not path.with_name(f"{path.name}.damaged-{n}").exists()
        )
        write_atomically(backup, lambda tmp: tmp.write_bytes(path.read_bytes()))
        log(
            f"warning: {path}: dropped {len(damaged)} damaged line(s) (line "
            f"{', '.join(map(str, damaged[:5]))}); "
            f"the file as it was is kept in {backup}"
        )
    write_text_atomically(path, "".join(line + "\n" for line in keep))


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def epoch_summary(line: dict[str, Any], epochs: int) -> str:
    t = line["train"]
    selection, v = runfolder.selection_metrics(line)
    parts = [
        f"epoch {line['epoch']}/{epochs}",
        f"loss {_fmt(t['loss'])} (action {_fmt(t['loss_action'])}, scene {_fmt(t['loss_scene'])}, "
        f"object {_fmt(t['loss_object'])})",
        f"action acc {_fmt(t['action_acc'])} train / {_fmt(v['action_acc'])} {selection}",
        f"scene acc {_fmt(v['scene_acc'])}",
        f"object mAP {_fmt(v['object_map'])}",
        f"lr {line['lr']:.2e}",
        f"{line['seconds']:.1f}s",
    ]
    skipped = t["skipped_clips"] + v["skipped_clips"]
    if skipped:
        parts.append(f"{skipped} clips skipped")
    return "  ".join(parts)


class _Progress:
    """A rich progress bar on a terminal (of rank 0), nothing otherwise."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()

    def wrap(self, log: Log) -> Log:
        """``log`` that prints above the bar while it is shown."""
        if self.bar is None:
            return log
        console = self.bar.console
        return lambda message: console.print(message, markup=False, highlight=False)

    def task(self, description: str, total: int) -> Callable[[int, float], None] | None:
        if self.bar is None:
            return None
        bar = self.bar
        task_id = bar.add_task(description, total=total, loss="-")

        def advance(step: int, loss: float) -> None:
            bar.update(task_id, completed=step + 1, loss=f"{loss:.3f}")
            if step + 1 >= total:
                bar.remove_task(task_id)

        return advance

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or stopped) :func:`train` call reports."""

    run_dir: Path
    epochs_done: int
    best_epoch: int
    best_selection_acc: float
    """The best action accuracy on the selection set (select, else val)."""
    stopped_early: bool


# --------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class CheckedInputs:
    """What :func:`check_inputs` found: everything the run needs before it touches a clip."""

    cfg: TrainConfig
    """Resolved, with the name template and the run folder filled in."""
    split: SplitFolder
    out: Path
    checkpoint: dict[str, Any] | None
    """The checkpoint to continue from (with ``resume``)."""
    videos_dir: Path
    videos_source: str
    device: torch.device
    model_config: ModelConfig


def check_inputs(
    cfg: TrainConfig, *, resume: bool = False, force: bool = False, log: Log | None = None
) -> CheckedInputs:
    """Every check of the options, the split folder, the videos directory and the run folder.

    Reads but writes nothing. :func:`train` runs it first; ``hvuaudit train
    --nproc-per-node`` runs it before it starts torchrun, so that a bad option
    stops with its own message and exit code rather than inside every process.
    """
    log = log or _stderr
    cfg = resolve_config(cfg, log=log)
    if cfg.tensorboard:
        _tensorboard_writer_class()  # refuses before anything is written when the package is missing
    if not cfg.split_dir:
        raise ConfigError("--split DIR is required: the folder written by `hvuaudit split`")
    split = load_split(cfg.split_dir)
    if warning := split.selection_warning():
        log(warning)
    videos_dir, videos_source = resolve_videos_dir(cfg.videos, split.manifest)
    # a prepared folder (`hvuaudit videos prepare`) names its clips its own way
    cfg = replace(cfg, name_template=resolve_name_template(cfg.name_template, split.manifest, videos_dir))
    if cfg.out is None:
        if resume:
            raise ConfigError("--resume needs --out runs/NAME: the run folder to continue")
        cfg = replace(cfg, out=default_out(split, cfg))
    assert cfg.out is not None  # --out, else default_out
    out = Path(cfg.out)
    ckpt = _check_resume(out, cfg, split) if resume else None
    device = resolve_device(cfg.device)
    assert cfg.head_hidden is not None  # resolve_config fills it in
    ensemble = cfg.adversary == "ensemble"
    model_config = ModelConfig(
        backbone=cfg.backbone,
        n_actions=len(split.labels["action"]),
        n_scenes=len(split.labels["scene"]),
        n_objects=len(split.labels["object"]),
        head_hidden=cfg.head_hidden,
        scene_head=cfg.scene_role is not None,
        object_head=cfg.object_role is not None,
        # --adversary ensemble: K copies of each adversarial head
        scene_copies=cfg.adversary_heads if ensemble and cfg.scene_role == "adversarial" else 1,
        object_copies=cfg.adversary_heads if ensemble and cfg.object_role == "adversarial" else 1,
    )
    if model_config.scene_head and not model_config.n_scenes:
        raise ConfigError(
            f"{split.dir / 'labels.json'}: no scene labels, so no scene head; use --method baseline"
        )
    if model_config.object_head and not model_config.n_objects:
        raise ConfigError(
            f"{split.dir / 'labels.json'}: no object labels, so no object head; drop it (--gamma 0)"
        )
    _check_run_dir(out, resume=resume, force=force)
    return CheckedInputs(cfg, split, out, ckpt, videos_dir, videos_source, device, model_config)


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    force: bool = False,
    stop_after: int | None = None,
    log: Log | None = None,
) -> TrainResult:
    """Train ``cfg`` into its run folder; with ``resume`` continue it exactly from checkpoint.pt.

    ``stop_after`` ends this call after that many epochs (resume later with
    ``resume=True``). Raises :class:`trainer.errors.TrainerError` subclasses for
    every problem the user can fix, all before training starts, except
    :class:`trainer.errors.DivergedError` (a non-finite loss).

    Started by torchrun (``WORLD_SIZE`` > 1), each process trains its share of
    every batch under DistributedDataParallel; they all return the same result,
    and only rank 0 logs and writes files.
    """
    dist_ctx = context_from_env()
    try:
        return _train(cfg, dist_ctx, resume=resume, force=force, stop_after=stop_after, log=log or _stderr)
    finally:
        shutdown_distributed()


def _train(
    cfg: TrainConfig,
    dist_ctx: DistContext,
    *,
    resume: bool,
    force: bool,
    stop_after: int | None,
    log: Log,
) -> TrainResult:
    if not dist_ctx.is_main:
        log = _quiet  # every process reaches the same conclusions; rank 0 reports them
    checked = check_inputs(replace(cfg, world_size=dist_ctx.world_size), resume=resume, force=force, log=log)
    run = _set_up(checked, dist_ctx, resume=resume, force=force, log=log)
    if checked.checkpoint is not None:
        _restore(run, checked.checkpoint, log)
    elif dist_ctx.is_main:
        run.metrics_path.unlink(missing_ok=True)
    run.config = _run_config(checked, run)
    if dist_ctx.is_main:
        write_json_atomically(checked.out / runfolder.CONFIG, run.config)
    return _loop(run, stop_after=stop_after, log=log)


@dataclass
class _Run:
    """Everything one training run holds between set-up, restore and the loop over epochs."""

    cfg: TrainConfig
    split: SplitFolder
    out: Path
    dist_ctx: DistContext
    device: torch.device
    amp_dtype: torch.dtype | None
    memory_format: torch.memory_format
    model: nn.Module  # the plain model: evaluation and checkpoints
    train_model: nn.Module  # the model under DDP when there are several processes
    model_config: ModelConfig
    objective: Objective
    mean: torch.Tensor
    std: torch.Tensor
    train_loader: Any
    selection_loader: Any  # the selection set (split.selection_set): best.pt, plateau, early stopping
    optimizer: torch.optim.Optimizer
    scheduler: Any
    step_scheduler: Any  # the scheduler stepped every batch (onecycle, or plateau's warm-up), else None
    scaler: torch.amp.GradScaler
    metrics_path: Path
    tensorboard: Any = None  # a SummaryWriter on rank 0 with --tensorboard, else None
    state: dict[str, Any] = field(
        default_factory=lambda: {
            "epoch": 0,
            "best_selection_acc": -1.0,
            "best_epoch": 0,
            "bad_epochs": 0,
            "first_scene_loss": None,
            "stopped_early": False,
        }
    )
    config: dict[str, Any] = field(default_factory=dict)  # what config.json and the checkpoints hold

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    @property
    def has_warmup(self) -> bool:
        """A plateau schedule after a warm-up of its own (a one-cycle schedule warms up by itself)."""
        return self.step_scheduler is not None and self.step_scheduler is not self.scheduler

    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "model_config": self.model_config.to_json(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **({"warmup": self.step_scheduler.state_dict()} if self.has_warmup else {}),
            "scaler": self.scaler.state_dict(),
            "state": dict(self.state),
            "rng": rng_state(),
            "config": self.config,
            "split": self.split.manifest,
            "labels": self.split.labels,
        }


def _usable_tables(checked: CheckedInputs, dist_ctx: DistContext, log: Log) -> dict[str, Any]:
    """Pre-flight: which clip files exist and open, before anything is trained (each process probes its
    share)."""
    cfg, split, out, videos_dir = checked.cfg, checked.split, checked.out, checked.videos_dir
    assert cfg.name_template is not None  # check_inputs resolves it from the split manifest
    # the training and selection sets only: val and the eval sets are checked, and scored, by `eval`
    tables = {
        name: build_table(split.sets[name], split.labels, videos_dir, cfg.name_template)
        for name in ("train", split.selection_set)
    }
    share = preflight(tables, threads=max(1, cfg.workers), rank=dist_ctx.rank, world_size=dist_ctx.world_size)
    checks = merge_preflight(dist_ctx.all_gather(share), tables) if dist_ctx.enabled else share
    if dist_ctx.is_main:
        write_preflight(out, checks, videos_dir=videos_dir, template=cfg.name_template)
    require_usable(
        checks,
        min_found=cfg.min_found,
        videos_dir=videos_dir,
        template=cfg.name_template,
        report=out / runfolder.PREFLIGHT_PROBLEMS,
    )
    for name, check in checks.items():
        if check.n_usable < check.total:
            log(
                f"note: {check.total - check.n_usable} of {check.total} {name} clips are missing or "
                "unreadable"
            )
        tables[name] = tables[name].subset(check.usable)
    return tables


def _set_up(checked: CheckedInputs, dist_ctx: DistContext, *, resume: bool, force: bool, log: Log) -> _Run:
    """Device, model, run folder, pre-flight, loaders, optimizer and schedule: everything before epoch 1."""
    cfg, out, model_config = checked.cfg, checked.out, checked.model_config
    device = checked.device
    if device.type == "cuda" and dist_ctx.enabled:
        device = torch.device("cuda", dist_ctx.local_rank)  # one GPU per process
    init_distributed(dist_ctx, device)
    amp_dtype = resolve_amp(cfg.amp, device)
    if amp_dtype is not None and device.type == "cpu":
        log(
            f"warning: --amp {cfg.amp} on CPU: torch's oneDNN kernels for the gradient of a 3D convolution "
            "in "
            "reduced precision are non-deterministic, and can corrupt memory, when the kernel is longer in "
            "time "
            "than its input (e.g. a 3×3×3 convolution over 2 frames deep in a 3D-ResNet); use --amp off on "
            "CPU"
        )
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # clip shapes are fixed: let cuDNN pick its fastest kernels
    # The model first: pretrained weights that do not fit stop the run before it writes anything.
    seed_everything(cfg.seed)
    model = build_model(model_config)
    if cfg.pretrained and checked.checkpoint is None:
        log(load_pretrained(model, cfg.pretrained).summary())
    dist_ctx.run_on_main(lambda: _prepare_run_dir(out, resume=resume, force=force))
    tables = _usable_tables(checked, dist_ctx, log)

    if cfg.sync_bn:
        if dist_ctx.enabled and device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            log("note: --sync-bn needs several CUDA processes (torchrun); BatchNorm stays per process here")
    memory_format = torch.channels_last_3d if cfg.channels_last else torch.contiguous_format
    # Module.to accepts memory_format with a device; torch's stubs only allow it alone
    model.to(device, memory_format=memory_format)  # type: ignore[call-overload]
    if cfg.compile:
        # the backbone only: its convolutions are the cost, and the heads take a gradient-reversal
        # coefficient that changes every step; compiling in place keeps the state-dict keys
        model.backbone.compile()
    # The forward/backward of training goes through DDP (gradients averaged over the processes);
    # evaluation and the checkpoints use the plain model.
    train_model: nn.Module = model
    if dist_ctx.enabled:
        train_model = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            # pretrain-adv stops using the scene head after pre-training
            find_unused_parameters=cfg.method == "pretrain-adv",
        )
    spec = BACKBONES[cfg.backbone]
    train_loader, selection_loader = _loaders(
        cfg, tables, checked.split.selection_set, model_config, device, dist_ctx
    )
    optimizer, scheduler, step_scheduler = _optimizer(cfg, model, len(train_loader), dist_ctx, log)
    assert cfg.lambda_ is not None and cfg.gamma is not None  # resolve_config fills in the weights
    return _Run(
        cfg=cfg,
        split=checked.split,
        out=out,
        dist_ctx=dist_ctx,
        device=device,
        amp_dtype=amp_dtype,
        memory_format=memory_format,
        model=model,
        train_model=train_model,
        model_config=model_config,
        objective=Objective(
            lambda_=cfg.lambda_,
            gamma=cfg.gamma,
            adversary=cfg.adversary,
            adv_schedule=cfg.adv_schedule,
            head_reduction=cfg.head_loss_reduction,
            adversary_heads=cfg.adversary_heads if cfg.adversary == "ensemble" else 1,
        ),
        mean=torch.tensor(spec.mean, device=device),
        std=torch.tensor(spec.std, device=device),
        train_loader=train_loader,
        selection_loader=selection_loader,
        optimizer=optimizer,
        scheduler=scheduler,
        step_scheduler=step_scheduler,
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
        metrics_path=out / runfolder.METRICS,
    )


def _loaders(
    cfg: TrainConfig,
    tables: dict[str, Any],
    selection_set: str,
    model_config: ModelConfig,
    device: torch.device,
    dist_ctx: DistContext,
) -> tuple[Any, Any]:
    clip_settings = ClipSettings(
        clip_len=cfg.clip_len,
        frame_stride=cfg.frame_stride,
        size=cfg.size,
        min_crop_scale=cfg.min_crop_scale,
        hflip=cfg.hflip,
    )
    n_sc, n_ob = model_config.n_scenes, model_config.n_objects
    train_ds = ClipDataset(
        tables["train"], n_scenes=n_sc, n_objects=n_ob, settings=clip_settings, train=True, seed=cfg.seed
    )
    selection_ds = ClipDataset(
        tables[selection_set], n_scenes=n_sc, n_objects=n_ob, settings=clip_settings, train=False
    )
    loader_options: dict[str, Any] = dict(
        workers=cfg.workers,
        seed=cfg.seed,
        pin_memory=device.type == "cuda",
        prefetch_factor=cfg.prefetch_factor,
        rank=dist_ctx.rank,
        world_size=dist_ctx.world_size,
    )
    clips_per_process = math.ceil(len(train_ds) / dist_ctx.world_size)
    train_loader = make_loader(
        train_ds,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=clips_per_process > cfg.batch_size,
        **loader_options,
    )
    assert cfg.eval_batch_size is not None  # resolve_config defaults it to batch_size
    selection_loader = make_loader(
        selection_ds, batch_size=cfg.eval_batch_size, shuffle=False, **loader_options
    )
    return train_loader, selection_loader


def _optimizer(
    cfg: TrainConfig, model: nn.Module, steps_per_epoch: int, dist_ctx: DistContext, log: Log
) -> tuple[torch.optim.Optimizer, Any, Any]:
    """The optimizer, its schedule, and the schedule stepped per batch: onecycle, plateau's linear warm-up
    (stepped during the --warmup-epochs only), or None (plateau without warm-up)."""
    # --lr is the rate for one process's batch; N processes make an N times larger global batch,
    # and the linear scaling rule (Goyal et al., 2017) multiplies the rate by N.
    assert cfg.lr is not None and cfg.weight_decay is not None  # resolve_config fills them in
    lr, max_lr = cfg.lr * cfg.world_size, (cfg.max_lr or 0.0) * cfg.world_size
    if dist_ctx.enabled:
        log(
            f"note: {cfg.world_size} processes × --batch-size {cfg.batch_size} = global batch "
            f"{cfg.world_size * cfg.batch_size}; learning rate {cfg.lr:g} × {cfg.world_size} = {lr:g}"
        )
    optimizer: torch.optim.Optimizer
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "onecycle":
        # --warmup-epochs W: the rise to max_lr takes W epochs (OneCycleLR's own default is 30% of them)
        pct_start = cfg.warmup_epochs / cfg.epochs if cfg.warmup_epochs else 0.3
        step_scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=pct_start
        )
        return optimizer, step_scheduler, step_scheduler
    warmup = None
    if cfg.warmup_epochs:
        # from 0.001 × lr to lr, linearly over the warm-up's batches (torchvision's video reference)
        warmup = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=WARMUP_START, total_iters=cfg.warmup_epochs * steps_per_epoch
        )
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=0.1, patience=cfg.lr_patience
    )
    return optimizer, plateau, warmup


def _restore(run: _Run, ckpt: dict[str, Any], log: Log) -> None:
    """Continue exactly where checkpoint.pt stopped: weights, optimizer, schedule, scaler, state, RNG."""
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    if run.has_warmup:
        run.step_scheduler.load_state_dict(ckpt["warmup"])
    run.scaler.load_state_dict(ckpt["scaler"])
    state = dict(ckpt["state"])
    if "best_val_acc" in state:  # a checkpoint written before the selection set had its own name
        state["best_selection_acc"] = state.pop("best_val_acc")
    run.state.update(state)
    set_rng_state(ckpt["rng"])
    if run.dist_ctx.is_main:
        _truncate_metrics(run.metrics_path, run.state["epoch"], log)
    log(f"resumed {run.out} after epoch {run.state['epoch']}")


def _run_config(checked: CheckedInputs, run: _Run) -> dict[str, Any]:
    cfg = checked.cfg
    return {
        **cfg.to_json(),
        "tasks": cfg.tasks,
        "split": checked.split.manifest,
        "split_dir": str(checked.split.dir),
        "selection_set": checked.split.selection_set,
        # a resumed run keeps the record of the weights it started from (the file may have moved since);
        # a checkpoint from before the record existed names them by --pretrained alone
        "pretraining": (
            checked.checkpoint["config"].get("pretraining")
            or ({"source": cfg.pretrained, "sha256": None} if cfg.pretrained else None)
            if checked.checkpoint is not None
            else pretraining_record(cfg.pretrained, cfg.backbone)
        ),
        "labels": checked.split.labels,
        "videos_dir": str(checked.videos_dir.resolve()),
        "videos_source": checked.videos_source,
        "model": run.model_config.to_json(),
        "code_version": code_version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _loop(run: _Run, *, stop_after: int | None, log: Log) -> TrainResult:
    """The epochs: train, validate, log a metrics line, checkpoint; early stopping and --stop-after."""
    cfg, state = run.cfg, run.state
    stopped_early = bool(state["stopped_early"])
    if stopped_early or state["epoch"] >= cfg.epochs:
        log(f"{run.out}: nothing to do, the run already ended after epoch {state['epoch']}")
    progress = _Progress(enabled=run.dist_ctx.is_main)
    log = progress.wrap(log)
    done_here = 0
    if cfg.tensorboard and run.dist_ctx.is_main:
        # a resumed run drops the events of epochs after its checkpoint, as metrics.jsonl drops their lines
        run.tensorboard = _tensorboard_writer_class()(
            log_dir=str(run.out / runfolder.TENSORBOARD),
            purge_step=state["epoch"] + 1 if state["epoch"] else None,
        )
    try:
        for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
            if stopped_early or (stop_after is not None and done_here >= stop_after):
                break
            stopped_early = _run_epoch(run, epoch, progress, log)
            done_here += 1
    finally:
        progress.stop()
        if run.tensorboard is not None:
            run.tensorboard.close()
    return TrainResult(
        run_dir=run.out,
        epochs_done=state["epoch"],
        best_epoch=state["best_epoch"],
        best_selection_acc=state["best_selection_acc"],
        stopped_early=stopped_early,
    )


def _reinit_ensemble(run: _Run, epoch: int) -> dict[str, int]:
    """--adversary ensemble: at the start of ``epoch``, draw the scheduled copy of each adversarial head
    afresh and forget its optimiser state; {head: copy} of what was re-initialised.

    The weights come from a generator seeded by (--seed, epoch, head), the same in every process and in
    a resumed run, so DDP's copies of the model stay equal and a resume is exact.
    """
    cfg = run.cfg
    if cfg.adversary != "ensemble":
        return {}
    copy = reinit_schedule(epoch, every=cfg.reinit_every, heads=cfg.adversary_heads)
    if copy is None:
        return {}
    model = run.model
    assert isinstance(model, AMTModel)  # the plain model (compiling keeps the module, DDP wraps train_model)
    done = {}
    for index, name in enumerate(("scene", "object")):
        copies = model.head_copies(name)
        if len(copies) < 2:
            continue
        device = next(copies[copy].parameters()).device
        # one stream per (seed, epoch, head), whatever ran before: the same draw in every process and resume
        generator = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + epoch * 101 + index)
        reinitialise(copies[copy], generator)
        for parameter in copies[copy].parameters():
            run.optimizer.state.pop(parameter, None)  # no momentum or Adam moments of the old head
        done[name] = copy
    return done


def _run_epoch(run: _Run, epoch: int, progress: _Progress, log: Log) -> bool:
    """One epoch of training and validation, its metrics line and checkpoints; True when it stops early."""
    cfg, state, dist_ctx = run.cfg, run.state, run.dist_ctx
    pretrain = cfg.pretrain_epochs if cfg.method == "pretrain-adv" else None
    started = time.perf_counter()
    scene_on = pretrain is None or epoch <= pretrain
    # pretrain-adv: the scene head is removed and fine-tuning starts, with a fresh best
    if pretrain is not None and epoch == pretrain + 1:
        state.update(best_selection_acc=-1.0, best_epoch=0, bad_epochs=0)
    ramp_epochs = pretrain if pretrain is not None else cfg.epochs
    steps_per_epoch = run.steps_per_epoch
    # pretrain-adv's fine-tuning has no scene head left to re-draw
    reinitialised = _reinit_ensemble(run, epoch) if scene_on else {}
    run.train_loader.sampler.set_epoch(epoch)
    train_metrics = train_one_epoch(
        run.train_model,
        run.objective,
        run.optimizer,
        run.train_loader,
        run.device,
        epoch,
        mean=run.mean,
        std=run.std,
        step_offset=(epoch - 1) * steps_per_epoch,
        total_steps=ramp_epochs * steps_per_epoch,
        scene=scene_on,
        # plateau's warm-up is stepped during the warm-up epochs only, so that it never undoes a drop after
        scheduler=run.step_scheduler if not run.has_warmup or epoch <= cfg.warmup_epochs else None,
        scaler=run.scaler,
        amp_dtype=run.amp_dtype,
        memory_format=run.memory_format,
        dist_ctx=dist_ctx,
        on_step=progress.task(f"epoch {epoch} train", steps_per_epoch),
    )
    lambda_eff = train_metrics.pop("lambda_eff")
    dist_ctx.check_replicas_equal(run.model, epoch=epoch)  # every process trained the same weights
    dist_ctx.broadcast_buffers(run.model)  # validate with rank 0's BatchNorm statistics
    selection = run.split.selection_set
    selection_metrics = evaluate(
        run.model,
        run.objective,
        run.selection_loader,
        run.device,
        mean=run.mean,
        std=run.std,
        scene=scene_on,
        amp_dtype=run.amp_dtype,
        memory_format=run.memory_format,
        dist_ctx=dist_ctx,
        on_step=progress.task(f"epoch {epoch} {selection}", len(run.selection_loader)),
    ).metrics
    selection_acc = selection_metrics["action_acc"] or 0.0
    if cfg.schedule == "plateau" and epoch > cfg.warmup_epochs:  # the warm-up epochs never count as a plateau
        run.scheduler.step(selection_acc)
    line: dict[str, Any] = {
        "epoch": epoch,
        "lr": run.optimizer.param_groups[0]["lr"],
        "seconds": round(time.perf_counter() - started, 3),
        "lambda_eff": lambda_eff,
        "phase": ("pretrain" if scene_on else "finetune") if pretrain is not None else "train",
        "train": train_metrics,
        "selection_set": selection,
        selection: selection_metrics,
    }
    if reinitialised:
        line["reinitialised"] = reinitialised  # --adversary ensemble: {head: the copy drawn afresh}
    loss_scene = train_metrics["loss_scene"]
    if loss_scene is not None and cfg.scene_role == "adversarial":
        first = state["first_scene_loss"] = state["first_scene_loss"] or loss_scene
        line["scene_loss_runaway"] = loss_scene > RUNAWAY_FACTOR * first
        if line["scene_loss_runaway"]:
            log(
                f"warning: the scene loss ran away ({first:.3g} at epoch 1, {loss_scene:.3g} now): "
                f"with --adversary {cfg.adversary} the scene head is learning to be wrong rather than "
                "the features losing scene information (see the trainer docs, docs/trainer.md)"
            )
    coverage = train_metrics.get("scene_dcorr2_coverage")
    if epoch == 1 and coverage is not None and coverage < LOW_COVERAGE:
        log(
            f"warning: --adversary cdcorr saw {coverage:.0%} of the training clips in epoch 1 (the rest were "
            "in a batch with fewer than 4 clips of their action, or all of them in one scene, where the "
            "penalty has nothing to act on): "
            "raise --batch-size"
        )
    improved = selection_acc > state["best_selection_acc"]
    if improved:
        state.update(best_selection_acc=selection_acc, best_epoch=epoch, bad_epochs=0)
    else:
        state["bad_epochs"] += 1
    in_pretrain = pretrain is not None and epoch <= pretrain
    stopped_early = bool(cfg.patience) and not in_pretrain and state["bad_epochs"] >= cfg.patience
    state.update(epoch=epoch, stopped_early=stopped_early)
    if dist_ctx.is_main:
        with open(run.metrics_path, "a") as fh:
            fh.write(json.dumps(line) + "\n")
        if run.tensorboard is not None:
            for tag, value in _tensorboard_scalars(line).items():
                run.tensorboard.add_scalar(tag, value, global_step=epoch)
            run.tensorboard.flush()
        payload = run.checkpoint_payload()
        save_atomic(payload, run.out / runfolder.CHECKPOINT)
        if improved:
            save_atomic(payload, run.out / runfolder.BEST)
    log(epoch_summary(line, cfg.epochs))
    if stopped_early:
        log(f"stopped early: no better {selection} accuracy for {cfg.patience} epochs (--patience)")
    return stopped_early
