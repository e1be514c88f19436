"""Click commands of the trainer, loaded lazily by ``hvuaudit`` (see hvuaudit/cli.py).

They stay thin: parse options, call one function of the trainer package, print.
Errors raised as :class:`trainer.errors.TrainerError` carry an ``exit_code`` that
the ``hvuaudit`` group turns into ``error: ...`` on stderr and that exit status.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

# torch is imported inside the command bodies, so `--help` stays fast.
from trainer import config as _cfg  # torch-free


def _overrides(ctx: click.Context, values: dict) -> dict:
    """Options the user typed (or set through the environment), as TrainConfig fields."""
    from click.core import ParameterSource

    given = {}
    for name, value in values.items():
        source = ctx.get_parameter_source(name)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given[name] = value
    return given


_D = _cfg.TrainConfig()  # option defaults come from the dataclass


def _given_settings(ctx: click.Context, values: dict) -> dict:
    """The settings of --config's run file with the options typed over them (config_file recorded)."""
    config_file = values.pop("config_file")
    from_file = _cfg.read_config_file(config_file) if config_file else {}
    typed = _overrides(ctx, values)
    given = {**from_file, **typed}  # what the user typed wins over the file
    if config_file:
        given["config_file"] = str(Path(config_file).resolve())
        # the file's settings that stand, to name the file when one of them is refused
        ctx.meta["hvuaudit.run_file"] = (config_file, {k: v for k, v in from_file.items() if k not in typed})
    return given


def _config_from_options(ctx: click.Context, values: dict) -> tuple[_cfg.TrainConfig, dict]:
    """A new run's settings: the options typed, over --config's file, over --recipe, over the defaults;
    and the settings given (file and options, the recipe among them), as `tune` writes them back."""
    given = _given_settings(ctx, values)
    recipe = given.pop("recipe", None)
    values.pop("recipe")
    if recipe is not None and recipe not in _cfg.RECIPES:  # from a run file (click checks --recipe)
        where = ctx.meta.get("hvuaudit.run_file", ("--recipe",))[0]
        raise _cfg.ConfigError(
            f"{where}: unknown recipe {recipe!r}; choose one of: {', '.join(_cfg.RECIPES)}"
        )
    defaults = {name: value for name, value in values.items() if name not in given}
    settings = {**defaults, **(_cfg.RECIPES[recipe] if recipe else {}), **given}
    if settings["method"] is None:  # with a tasks.json its roles choose the method
        settings["method"] = _cfg.AUTO if settings["tasks_file"] else _D.method
    return _cfg.with_recipe(recipe, **settings), {**given, **({"recipe": recipe} if recipe else {})}


def _name_the_run_file(ctx: click.Context, exc: _cfg.ConfigError) -> _cfg.ConfigError:
    """A refused value that came from --config's run file, said as the file's: `FILE: 'key' = value: ...`."""
    run_file = ctx.meta.get("hvuaudit.run_file")
    if run_file is None:
        return exc
    path, from_file = run_file
    for name, value in from_file.items():
        option = _cfg.option_name(name)
        if f"--{option} " in exc.message or f"--{option}:" in exc.message:
            message = f"{path}: '{option}' = {value!r} in the run file: {exc.message}"
            return _cfg.ConfigError(
                message.replace(f"drop --{option}", f"drop '{option}' from {path}"), exc.hint
            )
    return exc


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="run.toml: settings as `option = value` (docs/trainer.md, A run file); options given here win.",
)
@click.option("--split", "split_dir", metavar="DIR", help="Split folder written by `hvuaudit split`.")
@click.option("--out", metavar="DIR", help="Run folder [default: runs/VARIANT_METHOD_BACKBONE_seedSEED].")
@click.option(
    "--videos",
    metavar="DIR",
    help="Folder of the clip files [default: $HVUAUDIT_VIDEOS, else the split manifest's videos.dir].",
)
@click.option(
    "--name-template",
    metavar="T",
    help="mmaction | downloader | raw | a format string such as '{youtube_id}_{start_s}.mp4' "
    "[default: the manifest's, else mmaction].",
)
@click.option(
    "--recipe",
    type=click.Choice(list(_cfg.RECIPES)),
    default=None,
    help="A named group of settings (docs/trainer.md, Recipes): paper-r18 and paper-r50 are the paper's "
    "§5.1 (need --pretrained), cpu-demo is what `hvuaudit demo` trains. Options given override it.",
)
@click.option(
    "--method",
    type=click.Choice([*_cfg.METHODS, _cfg.AUTO]),
    default=None,
    help="auto: the method that --tasks's roles make [default: auto with --tasks, else "
    f"{_D.method}]. A method whose heads' roles --tasks contradicts is refused.",
)
@click.option(
    "--backbone",
    default=_D.backbone,
    show_default=True,
    help="tiny | torchvision's r3d18, r2plus1d_18, mc3_18 | Hara et al.'s r3d10, r3d18h, r3d34, r3d50, "
    "r3d101.",
)
@click.option(
    "--pretrained",
    metavar="kinetics400|PATH",
    help="Backbone weights: kinetics400 (torchvision's backbones), or a checkpoint file such as Hara et "
    "al.'s r3d50_K_200ep.pth (its classifier is replaced).",
)
@click.option("--adversary", type=click.Choice(_cfg.ADVERSARIES), default=_D.adversary, show_default=True)
@click.option(
    "--adversary-heads",
    type=int,
    default=_D.adversary_heads,
    show_default=True,
    help="--adversary ensemble: K adversarial heads under gradient reversal.",
)
@click.option(
    "--reinit-every",
    type=int,
    default=_D.reinit_every,
    show_default=True,
    help="--adversary ensemble: re-initialise the oldest head every this many epochs.",
)
@click.option(
    "--adv-schedule", type=click.Choice(_cfg.ADV_SCHEDULES), default=_D.adv_schedule, show_default=True
)
@click.option(
    "--head-loss-reduction",
    type=click.Choice(_cfg.HEAD_REDUCTIONS),
    default=_D.head_loss_reduction,
    show_default=True,
    help="Scene/object BCE over their classes: mean, or sum as the paper's Eq. 2 (λ and γ then weigh K "
    "times more, K = the head's classes).",
)
@click.option(
    "--lambda",
    "lambda_",
    type=float,
    help="Signed scene weight (<0 adversarial) [default: -0.3 adversarial, +1 auxiliary].",
)
@click.option("--gamma", type=float, help="Signed object weight [default: +1 when there is an object head].")
@click.option(
    "--tasks",
    "tasks_file",
    metavar="FILE",
    help="tasks.json from `hvuaudit nca roles`: its roles set the signs.",
)
@click.option("--pretrain-epochs", type=int, help="pretrain-adv: adversarial epochs [default: epochs // 2].")
@click.option("--epochs", type=int, default=_D.epochs, show_default=True)
@click.option("--batch-size", type=int, default=_D.batch_size, show_default=True)
@click.option("--eval-batch-size", type=int, help="[default: --batch-size]")
@click.option("--optimizer", type=click.Choice(_cfg.OPTIMIZERS), default=_D.optimizer, show_default=True)
@click.option("--lr", type=float, help="[default: 0.01 with sgd, 1e-3 with adam]")
@click.option("--max-lr", type=float, help="Peak of --schedule onecycle [default: --lr].")
@click.option("--momentum", type=float, default=_D.momentum, show_default=True)
@click.option("--weight-decay", type=float, help="[default: 1e-4 with sgd, 0 with adam]")
@click.option("--schedule", type=click.Choice(_cfg.SCHEDULES), default=_D.schedule, show_default=True)
@click.option(
    "--lr-patience",
    type=int,
    default=_D.lr_patience,
    show_default=True,
    help="plateau: epochs before lr ×0.1.",
)
@click.option(
    "--warmup-epochs",
    type=int,
    default=_D.warmup_epochs,
    show_default=True,
    help="Learning-rate warm-up: plateau rises linearly from 0.001 × lr over these epochs, then starts; "
    "onecycle reaches max-lr after them.",
)
@click.option("--patience", type=int, default=_D.patience, show_default=True, help="Early stop; 0 = never.")
@click.option("--seed", type=int, default=_D.seed, show_default=True)
@click.option(
    "--threads", type=int, default=_D.threads, show_default=True, help="torch CPU threads; 0 = default."
)
@click.option(
    "--workers",
    type=int,
    default=_D.workers,
    show_default=True,
    help="Decoding processes (per training process); 0 = in-process.",
)
@click.option(
    "--prefetch-factor",
    type=int,
    default=_D.prefetch_factor,
    show_default=True,
    help="Batches each decoding process prepares ahead.",
)
@click.option("--clip-len", type=int, default=_D.clip_len, show_default=True, help="Frames per clip.")
@click.option("--frame-stride", type=int, default=_D.frame_stride, show_default=True)
@click.option("--size", type=int, default=_D.size, show_default=True, help="Crop size in pixels.")
@click.option(
    "--min-crop-scale", type=float, default=_D.min_crop_scale, show_default=True, help="1 = no random crop."
)
@click.option("--hflip/--no-hflip", default=_D.hflip, show_default=True, help="Random horizontal flips.")
@click.option("--head-hidden", type=int, help="Scene/object head width [default: 2048, tiny: 64].")
@click.option(
    "--min-found", type=float, default=_D.min_found, show_default=True, help="Least usable share of clips."
)
@click.option("--device", type=click.Choice(_cfg.DEVICES), default=_D.device, show_default=True)
@click.option(
    "--amp",
    type=click.Choice(_cfg.AMP_MODES),
    default=_D.amp,
    show_default=True,
    help="Mixed precision: auto = bf16 on CUDA, off on CPU; fp16 adds a gradient scaler.",
)
@click.option(
    "--channels-last", is_flag=True, help="channels_last_3d memory format for the model and clips (CUDA)."
)
@click.option("--compile", is_flag=True, help="torch.compile the backbone (slow first steps).")
@click.option(
    "--tensorboard/--no-tensorboard",
    default=_D.tensorboard,
    help="Also write the metrics as TensorBoard event files in RUN/tensorboard (pip install tensorboard); "
    "--no-tensorboard resumes such a run without them.",
)
@click.option("--sync-bn", is_flag=True, help="SyncBatchNorm across the processes of a torchrun run (CUDA).")
@click.option(
    "--nproc-per-node",
    type=int,
    metavar="N",
    help="Train with N processes (one per GPU) under torchrun, with all the other options.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--force", is_flag=True, help="Overwrite the run in --out.")
@click.option("--stop-after", type=int, help="Stop after this many epochs of this call (resume later).")
@click.pass_context
def train(
    ctx: click.Context,
    resume: bool,
    force: bool,
    stop_after: int | None,
    nproc_per_node: int | None,
    **values,
) -> None:
    """Train a model on a split folder into a run folder (see docs/trainer.md).

    \b
    Examples:
      hvuaudit train --split out/si2
      hvuaudit train --split out/si2 --method baseline --backbone tiny --clip-len 8 --size 32
      hvuaudit train --split out/si2 --method amt --tasks tasks.json --lambda 0.3 --gamma 1
      hvuaudit train --split out/si2 --backbone r3d50 --pretrained r3d50_K_200ep.pth --nproc-per-node 4
      hvuaudit train --out runs/si2_amt_r3d18_seed0 --resume
    """
    from dataclasses import replace

    from trainer.train import load_run_config
    from trainer.train import train as run_training

    if resume and force:
        raise _cfg.ConfigError("--resume and --force contradict each other; pick one")
    try:
        if resume:
            given = _given_settings(ctx, values)
            out = given.get("out") or values["out"]
            if not out:
                raise _cfg.ConfigError("--resume needs --out runs/NAME: the run folder to continue")
            cfg = replace(load_run_config(out), **given)
        else:
            cfg, _ = _config_from_options(ctx, values)
        if nproc_per_node is not None:
            ctx.exit(_launch_torchrun(ctx, cfg, nproc_per_node, resume=resume, force=force))
        result = run_training(
            cfg, resume=resume, force=force, stop_after=stop_after, log=lambda m: click.echo(m, err=True)
        )
    except _cfg.ConfigError as exc:
        raise _name_the_run_file(ctx, exc) from exc
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every process returns the run folder
        click.echo(str(result.run_dir))


def _forwarded_arguments(ctx: click.Context) -> list[str]:
    """The options of this `train` call as typed, without --nproc-per-node (for torchrun's processes)."""
    from click.core import ParameterSource

    args: list[str] = []
    for param in ctx.command.params:
        if param.name == "nproc_per_node" or not isinstance(param, click.Option):
            continue
        if ctx.get_parameter_source(param.name) not in (
            ParameterSource.COMMANDLINE,
            ParameterSource.ENVIRONMENT,
        ):
            continue
        value = ctx.params[param.name]
        if param.is_flag and param.secondary_opts:  # --hflip/--no-hflip
            args.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                args.append(param.opts[0])
        else:
            args += [param.opts[0], str(value)]
    return args


def _launch_torchrun(
    ctx: click.Context, cfg: _cfg.TrainConfig, nproc_per_node: int, *, resume: bool, force: bool
) -> int:
    """Check the inputs here, then run `python -m torch.distributed.run ... -m trainer train ...`.

    Returns torchrun's exit status: 0, or 1 when a process failed (rank 0's
    message is printed above torchrun's report).
    """
    import subprocess
    import sys
    from dataclasses import replace

    from trainer.train import check_inputs

    if nproc_per_node < 1:
        raise _cfg.ConfigError(f"--nproc-per-node must be at least 1, got {nproc_per_node}")
    if "LOCAL_RANK" in os.environ:
        raise _cfg.ConfigError(
            "--nproc-per-node inside a torchrun process; drop it when torchrun starts the command"
        )
    # A mistake in the options stops here with its own message and exit code, not once per process.
    check_inputs(replace(cfg, world_size=nproc_per_node), resume=resume, force=force, log=lambda m: None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # one machine: torchrun picks a free port for the rendezvous
        f"--nproc-per-node={nproc_per_node}",
        "-m",
        "trainer",
        "train",
        *_forwarded_arguments(ctx),
    ]
    click.echo(f"starting {nproc_per_node} training processes: {' '.join(command)}", err=True)
    return subprocess.run(command, check=False).returncode


# --------------------------------------------------------------------------- tune
# tune takes every option of train that describes the runs; these are train's own (a tune has its own --out).
_NOT_FOR_TUNE = {"out", "resume", "force", "stop_after", "nproc_per_node"}


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--grid",
    "grid_specs",
    multiple=True,
    metavar="OPTION=V1,V2",
    help="Values of a train option to try (repeat for a product grid); lambda and gamma are magnitudes, "
    "signed by the heads' roles.",
)
@click.option(
    "--out",
    "tune_out",
    metavar="DIR",
    help="Tune folder: points/NAME runs, tune.json, chosen.toml "
    "[default: runs/tune_VARIANT_METHOD_BACKBONE].",
)
@click.option("--jobs", type=int, default=1, show_default=True, help="Points trained at the same time.")
@click.pass_context
def tune(ctx: click.Context, grid_specs: tuple[str, ...], tune_out: str | None, jobs: int, **values) -> None:
    """Choose λ and γ (or other train options) on the split's selection set (see docs/trainer.md).

    Trains every point of the grid (the other options as for `train`), scores each by its best.pt's
    top-1 on select.csv only, and writes the table (tune.json), the chosen point and its settings as a
    run file (chosen.toml, for `train --config`). Finished points are reused, stopped ones resumed.

    \b
    Examples:
      hvuaudit tune --split out/si2 --grid lambda=0.1,0.3,1 --grid gamma=0.3,1
      hvuaudit tune --split out/si2 --recipe cpu-demo --grid lambda=0.1,0.3,1 --jobs 2
      hvuaudit train --config runs/tune_si2_amt_tiny/chosen.toml --out runs/si2_amt_tuned
    """
    from hvucontracts.splitfolder import load_split
    from trainer.tune import parse_grid
    from trainer.tune import tune as run_tune

    grid = parse_grid(grid_specs)
    typed = _overrides(ctx, values)
    for name in grid:
        if name in typed:
            raise _cfg.ConfigError(
                f"--grid {name.rstrip('_').replace('_', '-')} and its option are both given; drop one"
            )
    values["out"] = None
    try:
        base, given = _config_from_options(ctx, values)
    except _cfg.ConfigError as exc:
        raise _name_the_run_file(ctx, exc) from exc
    if tune_out is None:
        if not base.split_dir:
            raise _cfg.ConfigError("--split DIR is required: the split folder to tune on")
        variant = load_split(base.split_dir).manifest.get("variant", "split")
        method = _cfg.resolve_config(base).method  # --method auto: the method of --tasks's roles
        tune_out = f"runs/tune_{variant}_{method}_{base.backbone}"
    try:
        results, chosen = run_tune(
            base, grid, Path(tune_out), given=given, jobs=jobs, log=lambda m: click.echo(m, err=True)
        )
    except _cfg.ConfigError as exc:
        raise _name_the_run_file(ctx, exc) from exc
    names = list(chosen.params)
    click.echo("\t".join([*names, "select_top1", "best_epoch", "run"]))
    for r in results:
        mark = " *" if r is chosen else ""
        row = [str(r.params[n]) for n in names] + [
            f"{r.selection_acc:.4f}{mark}",
            str(r.best_epoch),
            str(r.run),
        ]
        click.echo("\t".join(row))
    click.echo(
        f"chosen: {chosen.name} (top-1 {chosen.selection_acc:.4f} on select.csv); train with: "
        f"hvuaudit train --config {Path(tune_out) / 'chosen.toml'} --out runs/NAME",
        err=True,
    )


tune.params += [p for p in train.params if p.name not in _NOT_FOR_TUNE]
