"""Training settings: one frozen dataclass, its resolution, and the roles of the heads.

Sits between the CLI (which parses options into a :class:`TrainConfig`) and
:mod:`trainer.train` (which runs it). :func:`resolve_config` fills every default
that depends on another setting (learning rate per optimiser, λ/γ per method or
tasks.json, head width per backbone) and rejects contradictions before any data
is read. The resolved config is what ``config.json`` and the checkpoints hold,
so a run can be rebuilt from it alone. Never imports ``hvuaudit``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NoReturn

from hvucontracts.tasks import UNDECIDED, TasksFile, TasksFileError, read_tasks
from trainer.backbones import BACKBONES
from trainer.errors import TrainerError

METHODS = ("baseline", "mtl", "amt-no-object", "amt", "pretrain-adv")
AUTO = (
    "auto"  # --method auto: the method that tasks.json's roles make (amt, or mtl when the scene is learned)
)
ADVERSARIES = ("grl", "negative", "dcorr", "cdcorr", "ensemble")
ADV_SCHEDULES = ("constant", "dann")
# How a head's BCE is reduced over its classes: mean (the default, and the first version's) or sum (Eq. 2).
HEAD_REDUCTIONS = ("mean", "sum")
# --recipe NAME: a coherent group of settings, each of which an option given on the command line overrides.
# paper-*: the paper's §5.1 (Hara et al.'s 3D-ResNets pretrained on Kinetics-700, 16 frames of 112 px, SGD
# at 1e-2 with momentum, the rate divided by 10 when the selection accuracy stops rising, heads of 2 ×
# (Linear, BN, ReLU) with 2048 units, Eq. 2's summed head losses); cpu-demo: what `hvuaudit demo` trains.
_PAPER = {
    "clip_len": 16,
    "frame_stride": 1,
    "size": 112,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "schedule": "plateau",
    "head_hidden": 2048,
    "head_loss_reduction": "sum",
}
RECIPES: dict[str, dict[str, Any]] = {
    "paper-r18": {"backbone": "r3d18h", **_PAPER},
    "paper-r50": {"backbone": "r3d50", **_PAPER},
    "cpu-demo": {
        "backbone": "tiny",
        "clip_len": 8,
        "frame_stride": 1,
        "size": 32,
        "min_crop_scale": 1.0,
        "hflip": False,  # a flip turns the benchmark's moving_right into moving_left
        "optimizer": "adam",
        "schedule": "onecycle",
        "max_lr": 3e-3,
        "batch_size": 64,
        "epochs": 12,
        "patience": 0,  # every run trains its full epochs, so that runs compare at the same length
        "threads": 1,
        "workers": 0,
        "device": "cpu",
        "amp": "off",
    },
}
NEEDS_PRETRAINED = ("paper-r18", "paper-r50")


def with_recipe(name: str | None, **given: Any) -> TrainConfig:
    """A TrainConfig of recipe ``name`` (None: the defaults) with ``given`` settings over it."""
    if name is not None and name not in RECIPES:
        _fail(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    return TrainConfig(**{**(RECIPES[name] if name else {}), **given, "recipe": name})


OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("plateau", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "bf16", "fp16", "off")

# The heads each method trains, and their role when no tasks.json says otherwise.
METHOD_ROLES: dict[str, dict[str, str | None]] = {
    "baseline": {"scene": None, "object": None},
    "mtl": {"scene": "auxiliary", "object": None},
    "amt-no-object": {"scene": "adversarial", "object": None},
    "amt": {"scene": "adversarial", "object": "auxiliary"},
    "pretrain-adv": {"scene": "adversarial", "object": None},
}
# Methods without an object head of their own, to which a non-zero --gamma adds one (auxiliary if > 0).
OBJECT_HEAD_BY_GAMMA = ("mtl", "pretrain-adv")
# Default magnitudes. An adversarial scene weight of 0.3 (with the DANN ramp) is the
# prototype's best setting; |λ| = 1 collapsed training there (see docs/trainer.md).
DEFAULT_WEIGHT = {"adversarial": 0.3, "auxiliary": 1.0}

# Settings that may change when a run is resumed: they do not change the numbers.
RESUMABLE = frozenset(
    {
        "epochs",
        "patience",
        "workers",
        "threads",
        "device",
        "videos",
        "min_found",
        "out",
        "eval_batch_size",
        "split_dir",
        "prefetch_factor",
        "channels_last",
        "compile",
        "config_file",
        "tensorboard",
    }
)
# (split_dir may move: the resumed run's manifest.json is compared with the run's instead.
# channels_last and compile change the speed, and the float rounding only as much as another GPU would.)


class ConfigError(TrainerError):
    """An option value or a combination of options is wrong (exit 3)."""


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. ``None`` means "derive it" (see resolve_config)."""

    split_dir: str | None = None
    """The split folder written by ``hvuaudit split`` (manifest.json, train.csv, val.csv, labels.json)."""
    out: str | None = None
    """The run folder; default ``runs/<variant>_<method>_<backbone>_seed<seed>``."""
    videos: str | None = None
    """Videos directory given on the command line (else $HVUAUDIT_VIDEOS, else the split manifest)."""
    name_template: str | None = None
    """How a split row maps to a file name: mmaction, downloader, raw or a format string."""
    method: str = "amt"
    """baseline | mtl | amt-no-object | amt | pretrain-adv (the rows of the paper's Table 2)."""
    backbone: str = "r3d18"
    """tiny (CPU), torchvision's r3d18 (r3d_18) | r2plus1d_18 | mc3_18, or Hara et al.'s r3d10 | r3d18h |
    r3d34 | r3d50 | r3d101."""
    pretrained: str | None = None
    """kinetics400 (torchvision's weights of its backbones, needs a network once) or a checkpoint file
    (e.g. Hara et al.'s r3d50_K_200ep.pth for r3d50)."""
    adversary: str = "grl"
    """grl: gradient reversal (default); negative: the paper's Eq. 3 literally (can diverge); dcorr: a
    penalty of |λ|·dcorr²(features, scene labels), the evaluator's bias metric; cdcorr: the same within
    each action of the batch (scene-free given the action); ensemble: K adversarial
    heads under gradient reversal, one re-initialised in turn (docs/trainer.md)."""
    adversary_heads: int = 4
    """--adversary ensemble: K, the adversarial heads; the backbone is reversed against their mean loss."""
    reinit_every: int = 2
    """--adversary ensemble: every this many epochs the oldest head is re-initialised (at the start of
    epoch e, head ((e - 1) // E - 1) mod K; trainer.losses.reinit_schedule)."""
    adv_schedule: str = "dann"
    """constant, or dann: ramp |λ| from 0 with 2/(1+exp(-10p))-1, p = training progress."""
    recipe: str | None = None
    """The --recipe the settings started from (config.json records it with every resolved value)."""
    config_file: str | None = None
    """The --config run.toml the settings were read from (resolved path); its values are in config.json."""
    head_loss_reduction: str = "mean"
    """mean: each scene/object BCE is the mean over its classes; sum: the sum, as the paper's Eq. 2.
    Under sum, the same λ and γ weigh a head K times more (K = its classes; docs/trainer.md)."""
    lambda_: float | None = None
    """Signed scene weight: negative = adversarial, positive = auxiliary, 0 = no scene head."""
    gamma: float | None = None
    """Signed object weight: positive = auxiliary, negative = adversarial, 0 = no object head."""
    tasks_file: str | None = None
    """tasks.json from ``hvuaudit nca roles``: sets the role (sign) of the scene/object heads."""
    scene_role: str | None = None
    """Resolved: auxiliary | adversarial | None (no scene head)."""
    object_role: str | None = None
    """Resolved: auxiliary | adversarial | None (no object head)."""
    pretrain_epochs: int | None = None
    """pretrain-adv only: epochs of adversarial training before the scene head is removed."""
    epochs: int = 30
    batch_size: int = 16
    eval_batch_size: int | None = None
    """Batch size for validation/evaluation; default: batch_size."""
    optimizer: str = "sgd"
    lr: float | None = None
    """Initial learning rate; default 0.01 with sgd (the paper), 1e-3 with adam."""
    max_lr: float | None = None
    """Peak learning rate of the one-cycle schedule; default: lr (None with plateau)."""
    momentum: float = 0.9
    weight_decay: float | None = None
    """Default 1e-4 with sgd, 0 with adam."""
    schedule: str = "plateau"
    """plateau: ReduceLROnPlateau(×0.1) on val action accuracy; onecycle: OneCycleLR to max_lr."""
    warmup_epochs: int = 0
    """Epochs of learning-rate warm-up. plateau: the rate rises linearly, every batch, from 0.001 × lr to
    lr (as torchvision's video reference), and the plateau schedule starts after; onecycle: its rise to
    max_lr takes these epochs (pct_start = warmup_epochs / epochs) instead of the first 30%."""
    lr_patience: int = 2
    """plateau: epochs without improvement before the learning rate is divided by 10."""
    patience: int = 5
    """Early stop after this many epochs without a better val accuracy; 0 = never."""
    seed: int = 0
    threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    workers: int = 4
    """DataLoader worker processes that decode clips (per training process); 0 = decode in the main
    process."""
    prefetch_factor: int = 2
    """Batches each DataLoader worker decodes ahead of the training step."""
    clip_len: int = 16
    frame_stride: int = 2
    size: int = 112
    min_crop_scale: float = 0.35
    """Training crops cover this share of the frame area or more; 1.0 = no random crop."""
    hflip: bool = True
    """Random horizontal flips in training (turn off when left/right is the label)."""
    head_hidden: int | None = None
    """Hidden units of the scene/object heads; default 2048 (the paper), 64 for tiny."""
    min_found: float = 0.9
    """Stop before training when fewer than this share of train or val clips is usable."""
    device: str = "auto"
    amp: str = "auto"
    """bf16 | fp16 | off; auto = bf16 on CUDA, off on CPU."""
    channels_last: bool = False
    """Model and clips in channels_last_3d memory format (faster 3D convolutions on recent GPUs)."""
    compile: bool = False
    """torch.compile the backbone (the first steps are slow while it compiles)."""
    tensorboard: bool = False
    """Also write each epoch's metrics as TensorBoard event files in the run's tensorboard/ folder."""
    sync_bn: bool = False
    """Under torchrun on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm)."""
    world_size: int = 1
    """Training processes (torchrun's WORLD_SIZE); not an option: set by the launcher, recorded
    because the global batch (world_size × batch_size) and the learning rate depend on it."""

    # ----------------------------------------------------------------- json
    def to_json(self) -> dict[str, Any]:
        """The settings as config.json spells them ("lambda", not "lambda_")."""
        data = asdict(self)
        data["lambda"] = data.pop("lambda_")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from config.json / a checkpoint; unknown keys (split, labels...) are ignored."""
        data = dict(data)
        if "lambda" in data:
            data["lambda_"] = data.pop("lambda")
        if not data.get("head_loss_reduction"):  # runs from before the option: the class mean
            data["head_loss_reduction"] = "mean"
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def tasks(self) -> dict[str, str | None]:
        """The role of each task, as the report reads it."""
        return {"action": "learn", "scene": self.scene_role, "object": self.object_role}


def _fail(message: str) -> NoReturn:
    raise ConfigError(message)


# --------------------------------------------------------------------------- run.toml
# A key of run.toml is an option of `hvuaudit train` without its dashes (`warmup-epochs`, or
# `warmup_epochs`); three options are spelled otherwise than their setting.
OPTION_NAMES = {"split": "split_dir", "tasks": "tasks_file", "lambda": "lambda_"}
# Settings that are resolved or set by the launcher, and actions of one call: never read from a file.
NOT_IN_FILE = {"scene_role", "object_role", "world_size", "config_file"}
CALL_ACTIONS = ("resume", "force", "stop-after", "nproc-per-node", "config")


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def unused_settings(cfg: TrainConfig) -> dict[str, str]:
    """Settings that the others leave without effect, and why (``tune`` refuses a grid over them)."""
    unused = {}
    if cfg.schedule == "onecycle":
        unused["lr_patience"] = "only the plateau schedule waits for a plateau"
        if cfg.max_lr is not None:  # the one-cycle schedule starts at max_lr / 25, whatever the rate
            unused["lr"] = "--schedule onecycle with --max-lr sets every rate from --max-lr"
    if cfg.optimizer == "adam":
        unused["momentum"] = "--optimizer adam has no momentum setting"
    adversarial = "adversarial" in (cfg.scene_role, cfg.object_role)
    if cfg.adversary != "ensemble" or not adversarial:
        unused["adversary_heads"] = unused["reinit_every"] = (
            "only --adversary ensemble with an adversarial head has several heads"
        )
    elif cfg.reinit_every >= cfg.epochs:
        unused["reinit_every"] = (
            f"--reinit-every {cfg.reinit_every} re-draws no head in --epochs {cfg.epochs}"
        )
    return unused


def option_name(field_name: str) -> str:
    """A TrainConfig field as run.toml and the messages spell it: warmup_epochs -> warmup-epochs."""
    aliases = {field: option for option, field in OPTION_NAMES.items()}
    return aliases.get(field_name, field_name.replace("_", "-"))


def setting_types() -> dict[str, set[type]]:
    """Setting -> the TOML value types it takes (from TrainConfig's annotations)."""
    import typing

    hints = typing.get_type_hints(TrainConfig)
    out = {}
    for name, hint in hints.items():
        args = set(typing.get_args(hint)) or {hint}
        kinds = {t for t in args if t is not type(None)}
        if float in kinds:
            kinds.add(int)  # `lr = 1` is a float setting written as a whole number
        out[name] = kinds
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a run.toml (stdlib tomllib), as TrainConfig field names; ConfigError on an unknown
    key (naming the nearest valid one), a wrong type, a table, or a file that is not TOML."""
    import difflib
    import tomllib

    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        _fail(f"--config {path}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"--config {path}: could not be read ({exc})")
    except tomllib.TOMLDecodeError as exc:
        _fail(f"{path}: not valid TOML ({exc}); see docs/trainer.md, 'A run file'")
    types = setting_types()
    spellings = {name.replace("_", "-"): name for name in types if name not in NOT_IN_FILE}
    spellings |= {option: field for option, field in OPTION_NAMES.items()}
    for field_name in OPTION_NAMES.values():  # split-dir, tasks-file and lambda_ are not option names
        spellings.pop(field_name.replace("_", "-"), None)
    settings: dict[str, Any] = {}
    for key, value in document.items():
        spelled = key.replace("_", "-")
        if isinstance(value, dict):
            _fail(f"{path}: [{key}] is a table; run.toml holds `option = value` lines at its top level")
        if spelled in CALL_ACTIONS:
            _fail(
                f"{path}: '{key}' is an action of one call, not a setting; "
                f"give --{spelled} on the command line"
            )
        if spelled not in spellings:
            near = difflib.get_close_matches(spelled, list(spellings), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            _fail(
                f"{path}: unknown key '{key}'{hint} "
                "(keys are the options of `hvuaudit train`, docs/trainer.md)"
            )
        name = spellings[spelled]
        kinds = types[name]
        ok = any(isinstance(value, kind) for kind in kinds) and not (
            isinstance(value, bool) and bool not in kinds
        )
        if not ok:
            wanted = _TYPE_WORDS[float if float in kinds else next(iter(kinds))]
            _fail(f"{path}: '{key}' must be {wanted}, got {value!r}")
        if name in settings:
            _fail(f"{path}: '{key}' is given twice (as '{key}' and another spelling)")
        settings[name] = float(value) if float in kinds and not isinstance(value, bool) else value
    return settings


def read_tasks_file(path: str | Path) -> TasksFile:
    """Roles of scene/object, and the file's warnings, from a tasks.json written by ``hvuaudit nca roles``."""
    try:
        return read_tasks(path)
    except TasksFileError as exc:  # the trainer reports every bad option or input file as a ConfigError
        raise ConfigError(exc.message, exc.hint) from exc


def _role_weight(
    category: str, role: str | None, given: float | None, *, method: str, from_tasks: bool, flag: str
) -> tuple[str | None, float]:
    """Check an explicit weight against the role and return (role, signed weight)."""
    if role is None:
        if given not in (None, 0, 0.0):
            _fail(
                f"--method {method} trains no {category} head, so {flag} {given} contradicts it; "
                f"drop {flag} or pick a method with a {category} head (mtl, amt-no-object, amt)"
            )
        return None, 0.0
    sign = -1.0 if role == "adversarial" else 1.0
    if given is None:
        return role, sign * DEFAULT_WEIGHT[role]
    if not math.isfinite(given) or given == 0:
        _fail(
            f"{flag} {given} would switch off the {category} head that --method {method} trains; "
            f"use --method baseline for no {category} head"
        )
    if from_tasks:  # the file sets the sign, the option the magnitude
        return role, sign * abs(given)
    if (given < 0) != (role == "adversarial"):
        want = "negative (adversarial)" if role == "adversarial" else "positive (auxiliary)"
        _fail(
            f"{flag} {given} contradicts --method {method}, whose {category} head is {role}: "
            f"give a {want} value, or choose another --method"
        )
    return role, given


def matching_method(roles: dict[str, str]) -> str:
    """What to train for these roles, as advice: the named method that has them, else --method auto."""
    named = {
        ("adversarial", "auxiliary"): "--method amt",
        ("auxiliary", "auxiliary"): "--method mtl with --gamma 1 (an auxiliary object head)",
    }
    found = named.get((roles.get("scene", ""), roles.get("object", "")))
    return (
        f"the method that matches the file's roles is {found}"
        if found
        else "no named method has the file's roles"
    )


def _auto_method(roles: dict[str, str | None]) -> str:
    """The method --method auto records for the roles it took: a paper row named by the scene's role."""
    if roles["scene"] == "adversarial":
        return "amt" if roles["object"] is not None else "amt-no-object"
    return "mtl"


def _roles(cfg: TrainConfig, log) -> tuple[dict[str, str | None], bool]:
    """Each head's role, and whether a tasks.json set them (then the options give magnitudes only).

    A config resolved before (a resumed run: its roles are recorded) keeps its roles: the run goes on as it
    was trained. Otherwise the method names its heads' roles; a tasks.json that contradicts one is refused
    (no silent override), and ``--method auto`` takes the file's roles as they are.
    """
    from_tasks = cfg.tasks_file is not None
    if cfg.scene_role is not None or cfg.object_role is not None:
        return {"scene": cfg.scene_role, "object": cfg.object_role}, from_tasks
    if cfg.method == AUTO:
        if cfg.tasks_file is None:
            _fail("--method auto takes the roles of a tasks.json: give --tasks FILE, or name a method")
        tasks = _tasks_with_warnings(cfg.tasks_file, log)
        scene, obj = tasks.roles.get("scene"), tasks.roles.get("object")
        if scene not in ("auxiliary", "adversarial"):
            _fail(
                f"{cfg.tasks_file}: the scene's role is {scene or 'missing'}, so --method auto cannot choose "
                "a method; rerun `hvuaudit nca roles` where its warnings point, or name a method"
            )
        if obj not in ("auxiliary", "adversarial"):
            if log is not None:
                log(f"note: {cfg.tasks_file}: the object's role is {obj or 'missing'}: no object head")
            obj = None
        if cfg.gamma == 0:
            obj = None
        roles = {"scene": scene, "object": obj}
        if log is not None:
            log(
                f"note: --method auto: {cfg.tasks_file} makes the scene {scene} and the object "
                f"{obj or 'absent'}, so the method is {_auto_method(roles)}"
            )
        return roles, True
    roles = dict(METHOD_ROLES[cfg.method])
    if cfg.method in OBJECT_HEAD_BY_GAMMA and cfg.gamma not in (None, 0, 0.0):
        # These methods have no object head of their own; a non-zero --gamma adds one.
        roles["object"] = "auxiliary" if cfg.gamma > 0 else "adversarial"
    if cfg.tasks_file is None:
        return roles, False
    if cfg.method == "baseline":
        _fail(f"--method baseline trains no scene or object head, so --tasks {cfg.tasks_file} has no effect")
    file_roles = _tasks_with_warnings(cfg.tasks_file, log).roles
    for category in ("scene", "object"):
        if roles[category] is None:
            continue
        if category not in file_roles:
            _fail(f"{cfg.tasks_file}: has no role for '{category}', which --method {cfg.method} trains")
        if file_roles[category] == UNDECIDED:
            _fail(
                f"{cfg.tasks_file}: the roles rule left {category} undecided (nothing separates it from "
                f"the other categories there; the file's warnings say where), and --method "
                f"{cfg.method} trains a {category} head; rerun `hvuaudit nca roles` where its warnings "
                "point (another threshold, another clip mode, or more data), or train a method without "
                "that head"
            )
        own = METHOD_ROLES[cfg.method][category]
        if own is not None and file_roles[category] != own:
            # a method names its heads' roles; a file that says otherwise asks for another method
            _fail(
                f"--method {cfg.method} makes the {category} {own}, but {cfg.tasks_file} makes it "
                f"{file_roles[category]}; {matching_method(file_roles)} (--method auto takes the "
                "file's roles as they are)"
            )
        roles[category] = file_roles[category]
    return roles, True


def _tasks_with_warnings(path: str, log) -> TasksFile:
    tasks = read_tasks_file(path)
    if log is not None:  # the file's own warnings (a threshold outside a band) are shown again here
        for warning in tasks.warnings:
            log(f"warning: {path}: {warning}")
    return tasks


def resolve_config(cfg: TrainConfig, *, log=None) -> TrainConfig:
    """Fill derived defaults, derive the head roles and reject contradictions.

    Idempotent: resolving a resolved config gives it back unchanged.
    """
    if cfg.recipe in NEEDS_PRETRAINED and not cfg.pretrained:
        _fail(
            f"--recipe {cfg.recipe} starts from Kinetics-700 weights, as the paper does: pass --pretrained "
            "r3d18_K_200ep.pth (r3d50_K_200ep.pth for paper-r50), Hara et al.'s checkpoint",
        )
    if cfg.recipe is not None and cfg.recipe not in RECIPES:
        _fail(f"unknown recipe {cfg.recipe!r}; choose one of: {', '.join(RECIPES)}")
    if cfg.method not in (*METHODS, AUTO):
        _fail(f"unknown method {cfg.method!r}; choose one of: {', '.join((*METHODS, AUTO))}")
    if cfg.backbone not in BACKBONES:
        _fail(f"unknown backbone {cfg.backbone!r}; choose one of: {', '.join(BACKBONES)}")
    for name, value, allowed in (
        ("adversary", cfg.adversary, ADVERSARIES),
        ("adv-schedule", cfg.adv_schedule, ADV_SCHEDULES),
        ("head-loss-reduction", cfg.head_loss_reduction, HEAD_REDUCTIONS),
        ("optimizer", cfg.optimizer, OPTIMIZERS),
        ("schedule", cfg.schedule, SCHEDULES),
        ("device", cfg.device, DEVICES),
        ("amp", cfg.amp, AMP_MODES),
    ):
        if value not in allowed:
            _fail(f"--{name} {value!r} is not one of: {', '.join(allowed)}")
    for name, number, low in (
        ("epochs", cfg.epochs, 1),
        ("batch-size", cfg.batch_size, 1),
        ("clip-len", cfg.clip_len, 1),
        ("frame-stride", cfg.frame_stride, 1),
        ("size", cfg.size, 8),
        ("threads", cfg.threads, 0),
        ("workers", cfg.workers, 0),
        ("prefetch-factor", cfg.prefetch_factor, 1),
        ("patience", cfg.patience, 0),
        ("lr-patience", cfg.lr_patience, 0),
        ("warmup-epochs", cfg.warmup_epochs, 0),
    ):
        if int(number) != number or number < low:
            _fail(f"--{name} must be an integer of at least {low}, got {number}")
    if cfg.adversary_heads != int(cfg.adversary_heads) or cfg.adversary_heads < 2:
        _fail(f"--adversary-heads is K >= 2 heads of --adversary ensemble, got {cfg.adversary_heads}")
    if cfg.reinit_every != int(cfg.reinit_every) or cfg.reinit_every < 1:
        _fail(f"--reinit-every is a number of epochs, at least 1, got {cfg.reinit_every}")
    if cfg.adversary == "dcorr" and cfg.batch_size < 4:
        _fail(
            f"--adversary dcorr measures dcorr² on each process's batch, which needs 4 clips or more; "
            f"--batch-size {cfg.batch_size} would leave the adversary off: give --batch-size 4 or more"
        )
    eval_batch = cfg.eval_batch_size or cfg.batch_size
    if cfg.adversary in ("dcorr", "cdcorr") and eval_batch < (4 if cfg.adversary == "dcorr" else 16):
        _fail(
            f"--adversary {cfg.adversary} also measures its dcorr² on the selection set's batches; "
            f"--eval-batch-size {eval_batch} is too small for it: give --eval-batch-size "
            f"{4 if cfg.adversary == 'dcorr' else 16} or more"
        )
    if cfg.adversary == "cdcorr" and cfg.batch_size < 16:
        _fail(
            f"--adversary cdcorr measures dcorr² among each action's clips of a batch (4 or more of one "
            f"action); --batch-size {cfg.batch_size} would rarely hold that: give --batch-size 16 or more"
        )
    if cfg.warmup_epochs >= cfg.epochs:
        _fail(
            f"--warmup-epochs {cfg.warmup_epochs} leaves no epoch of --epochs {cfg.epochs} after the "
            "warm-up; "
            "give fewer warm-up epochs or more epochs"
        )
    if cfg.eval_batch_size is not None and cfg.eval_batch_size < 1:
        _fail(f"--eval-batch-size must be at least 1, got {cfg.eval_batch_size}")
    if not 0.0 <= cfg.min_found <= 1.0:
        _fail(f"--min-found is a share of the clips between 0 and 1, got {cfg.min_found}")
    if not 0.0 < cfg.min_crop_scale <= 1.0:
        _fail(f"--min-crop-scale must be in (0, 1], got {cfg.min_crop_scale}")
    if cfg.head_hidden is not None and cfg.head_hidden < 1:
        _fail(f"--head-hidden must be at least 1, got {cfg.head_hidden}")

    # Roles and signed weights.
    roles, from_tasks = _roles(cfg, log)
    if cfg.method == AUTO:
        cfg = replace(cfg, method=_auto_method(roles))
    scene_role, lam = _role_weight(
        "scene", roles["scene"], cfg.lambda_, method=cfg.method, from_tasks=from_tasks, flag="--lambda"
    )
    object_role, gamma = _role_weight(
        "object", roles["object"], cfg.gamma, method=cfg.method, from_tasks=from_tasks, flag="--gamma"
    )

    pretrain_epochs = cfg.pretrain_epochs
    if cfg.method == "pretrain-adv":
        if pretrain_epochs is None:
            pretrain_epochs = max(1, cfg.epochs // 2)
        if not 1 <= pretrain_epochs < cfg.epochs:
            _fail(
                f"--pretrain-epochs {pretrain_epochs} must be at least 1 and below --epochs {cfg.epochs}, "
                "so that fine-tuning without the scene head gets an epoch"
            )
    elif pretrain_epochs is not None:
        _fail(f"--pretrain-epochs only applies to --method pretrain-adv, not {cfg.method}")

    lr = cfg.lr if cfg.lr is not None else (0.01 if cfg.optimizer == "sgd" else 1e-3)
    if not lr > 0:
        _fail(f"--lr must be positive, got {lr}")
    max_lr = None  # only the one-cycle schedule has a peak
    if cfg.schedule == "onecycle":
        max_lr = cfg.max_lr if cfg.max_lr is not None else lr
        if not max_lr > 0:
            _fail(f"--max-lr must be positive, got {max_lr}")
    elif cfg.max_lr is not None:
        _fail("--max-lr only applies to --schedule onecycle")
    weight_decay = (
        cfg.weight_decay if cfg.weight_decay is not None else (1e-4 if cfg.optimizer == "sgd" else 0.0)
    )
    head_hidden = cfg.head_hidden if cfg.head_hidden is not None else BACKBONES[cfg.backbone].head_hidden
    return replace(
        cfg,
        tasks_file=str(Path(cfg.tasks_file).resolve()) if cfg.tasks_file else None,
        lambda_=lam,
        gamma=gamma,
        scene_role=scene_role,
        object_role=object_role,
        pretrain_epochs=pretrain_epochs,
        lr=lr,
        max_lr=max_lr,
        weight_decay=weight_decay,
        head_hidden=head_hidden,
        eval_batch_size=cfg.eval_batch_size or cfg.batch_size,
    )


def diff_for_resume(saved: TrainConfig, new: TrainConfig) -> list[tuple[str, Any, Any]]:
    """Settings that differ between a run's resolved config and a resumed one's, and matter."""
    out = []
    for f in fields(TrainConfig):
        if f.name in RESUMABLE:
            continue
        a, b = getattr(saved, f.name), getattr(new, f.name)
        if a != b:
            out.append(("lambda" if f.name == "lambda_" else f.name, a, b))
    return out
