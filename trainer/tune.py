"""Choosing λ and γ (or any setting of ``train``) on the selection set: ``hvuaudit tune``.

Where it sits: above :mod:`trainer.train`, which trains one run per point of the grid into
``OUT/points/NAME`` (a run folder like any other), and below the CLI (``trainer.cli``).
Each point is scored by its own record of the selection set, ``select.csv``: the selection
accuracy of its best.pt, which the training loop measured. Nothing here decodes, scores or
reads the labels of ``val.csv`` or the ``eval_*`` sets, so the test pairs never choose
(a test changes every val.csv label and gets the same table). A split without a selection
set is refused. Finished points are reused and stopped ones resumed, so a rerun of the same
command costs nothing and an interrupted one goes on.

Writes ``OUT/tune.json`` (the grid, every point's score and the chosen one) and
``OUT/chosen.toml``, the chosen point's settings as a run file for ``train --config``.
Never imports ``hvuaudit``.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from hvucontracts import runfolder
from hvucontracts.errors import HvuError
from hvucontracts.files import read_owner_marker, write_owner_marker, write_text_atomically
from hvucontracts.splitfolder import SELECT, SELECT_CSV, load_split
from trainer.config import (
    NOT_IN_FILE,
    OBJECT_HEAD_BY_GAMMA,
    OPTION_NAMES,
    RESUMABLE,
    ConfigError,
    TrainConfig,
    option_name,
    resolve_config,
    setting_types,
    unused_settings,
)
from trainer.errors import ConflictError, TrainerError

TUNE_FORMAT = "hvuaudit-tune/1"
TUNE_KIND = "tune"  # the kind in a tune folder's ownership marker
TUNE_JSON = "tune.json"
CHOSEN_TOML = "chosen.toml"
POINTS = "points"
# What a grid may not vary, and why (epochs and patience change what is learned: they may be tuned).
WHY_NOT_TUNABLE = {
    **{name: "it changes the speed, not what is learned" for name in RESUMABLE - {"epochs", "patience"}},
    **{name: "it is resolved from other settings" for name in NOT_IN_FILE},
    "split_dir": "it says where the data are",
    "name_template": "it says where the data are",
    "out": "each point has its own run folder under --out",
    "recipe": "a recipe is a group of settings: give the recipe, and grid the settings in it",
    "tasks_file": "tune one tasks.json at a time",
    "method": "tune one method at a time: its heads' roles sign λ and γ",
    "seed": "choosing a seed on the selection set is cherry-picking; train several seeds instead",
}
# Settings that a point's earlier run must share with this call to be reused, though a resume may change
# them: points of different lengths would be compared.
REUSE_MUST_MATCH = ("epochs", "patience")
# λ and γ are given as magnitudes: the sign is the head's role (the method's, or tasks.json's).
SIGNED = {"lambda_": "scene_role", "gamma": "object_role"}

Log = Callable[[str], None]


@dataclass(frozen=True)
class PointResult:
    """One trained point of the grid and its score on the selection set."""

    name: str
    params: dict[str, Any]  # option name -> value, as the grid gives it (λ and γ signed)
    run: Path
    selection_acc: float
    selection_loss: float | None  # the action loss on the selection set at best_epoch: the tie-break
    best_epoch: int
    epochs_done: int
    seconds: float  # of this call (for a reused point, the time to check and load it)


def parse_grid(specs: tuple[str, ...] | list[str]) -> dict[str, tuple[Any, ...]]:
    """``--grid lambda=0.1,0.3,1 --grid gamma=0.3,1`` -> {"lambda_": (0.1, 0.3, 1.0), "gamma": (0.3, 1.0)}.

    Keys are options of ``train`` (as in run.toml); values are parsed with the setting's type.
    """
    types = setting_types()
    spellings = {option_name(name): name for name in types if name not in WHY_NOT_TUNABLE}
    grid: dict[str, tuple[Any, ...]] = {}
    if not specs:
        raise ConfigError("tune needs at least one --grid OPTION=V1,V2,...; e.g. --grid lambda=0.1,0.3,1")
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().removeprefix("--").replace("_", "-").rstrip("-")
        if not sep or not values.strip():
            raise ConfigError(f"--grid {spec!r}: expected OPTION=V1,V2,..., e.g. --grid lambda=0.1,0.3,1")
        if key not in spellings:
            field = dict(OPTION_NAMES).get(key, key.replace("-", "_"))
            if field in WHY_NOT_TUNABLE:
                raise ConfigError(
                    f"--grid {key}: {key} cannot be tuned: {WHY_NOT_TUNABLE[field]}; set it as an option"
                )
            near = difflib.get_close_matches(key, list(spellings), n=1)
            raise ConfigError(
                f"--grid {key}: not an option of train" + (f"; did you mean '{near[0]}'?" if near else "")
            )
        name = spellings[key]
        if name in grid:
            raise ConfigError(f"--grid {key} is given twice; give all its values in one --grid {key}=V1,V2")
        parsed = tuple(_parse_value(key, raw.strip(), types[name]) for raw in values.split(","))
        if len(set(parsed)) != len(parsed):
            raise ConfigError(f"--grid {spec!r}: a value is listed twice")
        grid[name] = parsed
    return grid


def _parse_value(key: str, raw: str, kinds: set[type]) -> Any:
    if bool in kinds:
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
    elif float in kinds:
        try:
            value = float(raw)
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return value
    elif int in kinds:
        if re.fullmatch(r"-?\d+", raw):
            return int(raw)
    elif str in kinds and raw:
        return raw
    wanted = (
        "true or false"
        if bool in kinds
        else "a number"
        if float in kinds
        else "an integer"
        if int in kinds
        else "a word"
    )
    raise ConfigError(f"--grid {key}: {raw!r} is not {wanted}")


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)  # never two values under one name
    return str(value)


def point_name(params: dict[str, Any]) -> str:
    """The folder of a point: ``lambda=0.3_gamma=1`` (a character outside [A-Za-z0-9.+-] becomes -)."""
    return "_".join(
        f"{option_name(name)}={re.sub(r'[^A-Za-z0-9.+-]', '-', _value_text(value))}"
        for name, value in params.items()
    )


def plan(
    base: TrainConfig, grid: dict[str, tuple[Any, ...]], out: Path
) -> list[tuple[str, dict[str, Any], TrainConfig]]:
    """Every point of the grid, in the order of its axes: (name, signed values, resolved config)."""
    resolved = resolve_config(base)  # a mistake in the shared options stops here, once
    points: list[tuple[str, dict[str, Any], TrainConfig]] = []
    # Points that differ only in axes doing nothing at them (--adversary-heads with --adversary grl) train one
    # run: the first of them, with its own values (which do nothing there either). An axis doing nothing at
    # every point is refused. runs: what a point trains (its values, the inert ones left out) -> its values
    # as the grid gave them, so that two values making one point (gamma=1,-1) are still a mistake
    inert: dict[str, str] = {}
    active_somewhere: set[str] = set()
    runs: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        for name, role_field in SIGNED.items():
            if name not in params:
                continue
            role = getattr(resolved, role_field)
            if role is None and name == "gamma" and resolved.method in OBJECT_HEAD_BY_GAMMA:
                role = "auxiliary"  # a positive --gamma adds an auxiliary object head to these methods
            if role is None:
                raise ConfigError(
                    f"--grid {option_name(name)}: --method {resolved.method} trains no "
                    f"{'scene' if name == 'lambda_' else 'object'} head, so its weight cannot be tuned"
                )
            if params[name] == 0:
                raise ConfigError(
                    f"--grid {option_name(name)}: 0 would switch the head off; tune magnitudes > 0"
                )
            params[name] = (-1.0 if role == "adversarial" else 1.0) * abs(params[name])
        name = point_name({k: abs(v) if k in SIGNED else v for k, v in params.items()})
        cfg = replace(base, **params, out=str(out / POINTS / name))
        unused_here = unused_settings(resolve_config(cfg))  # a value the setting refuses stops here
        for axis in grid:
            if axis in unused_here:
                inert.setdefault(axis, unused_here[axis])
            else:
                active_somewhere.add(axis)
        run = point_name({k: abs(v) if k in SIGNED else v for k, v in params.items() if k not in unused_here})
        as_given = {k: v for k, v in zip(grid, values, strict=True) if k not in unused_here}
        if run in runs:
            if runs[run] == as_given:
                continue  # the run of an earlier point: they differ only in axes that do nothing here
            raise ConfigError(
                f"--grid: {_described(as_given)} and {_described(runs[run])} are the same point "
                f"({name}); list each value once"
            )
        runs[run] = as_given
        points.append((name, params, cfg))
    for axis in grid:
        if axis not in active_somewhere:
            raise ConfigError(
                f"--grid {option_name(axis)}: every point would train the same run: {inert[axis]}"
            )
    return points


def _described(params: dict[str, Any]) -> str:
    return " ".join(f"{option_name(k)}={_value_text(v)}" for k, v in params.items())


def _check_out(out: Path) -> None:
    """Refuse a folder that another hvuaudit command owns, or whose tune.json or chosen.toml another tool
    (or a person) wrote."""
    if out.exists() and not out.is_dir():
        raise ConflictError(f"--out {out} exists and is not a folder; choose a folder for the tune")
    ours = [name for name in (TUNE_JSON, CHOSEN_TOML) if (out / name).exists() or (out / name).is_symlink()]
    marker = read_owner_marker(out) if out.is_dir() else None
    if marker is not None and marker.get("kind") != TUNE_KIND:
        raise ConflictError(
            f"{out} is a {marker.get('kind')} folder of hvuaudit, not a tune's; it is left alone: "
            "choose another --out"
        )
    if ours and marker is None:
        raise ConflictError(
            f"{out} holds {', '.join(ours)} that hvuaudit tune did not write; they are left alone: "
            "choose another --out"
        )


def _train_point(cfg_json: dict[str, Any], resume: bool, force: bool) -> dict[str, Any]:
    """Train one point (in this process, or in a worker process with --jobs); its result as plain data."""
    from trainer.train import train

    cfg = TrainConfig.from_json(cfg_json)
    started = time.perf_counter()
    try:
        result = train(cfg, resume=resume, force=force, log=lambda message: None)
    except HvuError as exc:  # to the parent as text: a worker's exception may not unpickle
        return {"error": str(exc), "exit_code": int(exc.exit_code)}
    return {
        "selection_acc": result.best_selection_acc,
        "best_epoch": result.best_epoch,
        "epochs_done": result.epochs_done,
        "seconds": time.perf_counter() - started,
    }


def _how_to_start(run: Path) -> tuple[bool, bool]:
    """(resume, force) for a point's run folder: resume a checkpoint, replace a run that has none."""
    if (run / runfolder.CHECKPOINT).is_file():
        return True, False
    marker = read_owner_marker(run) if run.is_dir() else None
    return False, marker is not None and marker.get("kind") == runfolder.RUN_KIND


def _check_reuse(name: str, cfg: TrainConfig) -> None:
    """A point trained before must have had this call's length: a longer or shorter run is not comparable."""
    config_path = Path(cfg.out or "") / runfolder.CONFIG
    try:
        recorded = TrainConfig.from_json(json.loads(config_path.read_text()))
    except (OSError, ValueError):
        return  # the run's own resume check reports a damaged run folder
    for setting in REUSE_MUST_MATCH:
        before, now = getattr(recorded, setting), getattr(cfg, setting)
        if before != now:
            raise ConfigError(
                f"point {name} ({config_path.parent}) was trained with --{option_name(setting)} {before}, "
                f"this call asks for {now}: its points would not be comparable; give "
                f"--{option_name(setting)} {before}, or another --out"
            )


def tune(
    base: TrainConfig,
    grid: dict[str, tuple[Any, ...]],
    out: Path,
    *,
    given: dict[str, Any] | None = None,
    jobs: int = 1,
    log: Log | None = None,
) -> tuple[list[PointResult], PointResult]:
    """Train every point of ``grid`` over ``base`` into ``out/points``; return the points and the chosen one.

    The chosen point has the highest selection accuracy; among equal ones, the lowest action loss on the
    selection set at its best epoch; then the first in grid order. ``given``: the settings the user gave
    (run file, options and recipe), which chosen.toml writes back with the chosen values (default: none,
    so chosen.toml holds the grid's values and the split).
    """
    log = log or (lambda message: None)
    if not base.split_dir:
        raise ConfigError("--split DIR is required: the split folder to tune on")
    split = load_split(base.split_dir)
    if split.selection_set != SELECT:
        raise ConfigError(
            f"{split.dir} has no selection set ({SELECT_CSV}), and tune chooses on nothing else: choosing on "
            "val.csv would tune to the test pairs. Rebuild the split with `hvuaudit split` (its "
            "--select-fraction is 0.1 by default)"
        )
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    _check_out(out)
    points = plan(base, grid, out)
    starts = {name: _how_to_start(Path(cfg.out or "")) for name, _, cfg in points}
    for name, _, cfg in points:
        if starts[name][0]:
            _check_reuse(name, cfg)
    from trainer.train import check_inputs

    # the split, the videos and the run folder, once, before anything is trained (writes nothing)
    first_name, _, first = points[0]
    check_inputs(first, resume=starts[first_name][0], force=starts[first_name][1], log=lambda message: None)
    write_owner_marker(out, TUNE_KIND, (TUNE_JSON, CHOSEN_TOML))
    for name, _, _ in points:
        log(f"{'resuming or reusing' if starts[name][0] else 'training'} {name}")
    outcomes: dict[str, dict[str, Any]] = {}
    if jobs == 1:
        for name, _, cfg in points:
            outcomes[name] = _train_point(cfg.to_json(), *starts[name])
            _report_point(name, outcomes[name], log)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a fresh interpreter per worker (torch's threads and a fork do not mix)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {
                name: pool.submit(_train_point, cfg.to_json(), *starts[name]) for name, _, cfg in points
            }
            for name, future in futures.items():
                outcomes[name] = future.result()
                _report_point(name, outcomes[name], log)
    failed = {name: o for name, o in outcomes.items() if "error" in o}
    if failed:
        name, outcome = next(iter(failed.items()))
        error = TrainerError(
            f"tune: point {name} ({out / POINTS / name}) failed: {outcome['error']}"
            + (f" (and {len(failed) - 1} more points failed)" if len(failed) > 1 else ""),
        )
        error.exit_code = outcome["exit_code"]
        raise error
    results = [
        PointResult(
            name=name,
            params={option_name(k): v for k, v in params.items()},
            run=Path(cfg.out or ""),
            selection_acc=outcomes[name]["selection_acc"],
            selection_loss=_selection_loss(Path(cfg.out or ""), outcomes[name]["best_epoch"]),
            best_epoch=outcomes[name]["best_epoch"],
            epochs_done=outcomes[name]["epochs_done"],
            seconds=outcomes[name]["seconds"],
        )
        for name, params, cfg in points
    ]
    # the highest accuracy; among equal ones the lowest action loss (a selection set of seen pairs is often
    # solved by every point); max keeps the first of what is still equal
    chosen = max(results, key=_criterion)
    _write_results(out, base, grid, results, chosen, jobs, given or {})
    return results, chosen


def _criterion(result: PointResult) -> tuple[float, float]:
    loss = result.selection_loss
    return result.selection_acc, -(loss if loss is not None else math.inf)


def _selection_loss(run: Path, epoch: int) -> float | None:
    """The selection set's action loss at ``epoch``, from the run's metrics.jsonl."""
    try:
        lines = [json.loads(line) for line in (run / runfolder.METRICS).read_text().splitlines() if line]
    except (OSError, ValueError):
        return None
    for line in lines:
        if line.get("epoch") == epoch:
            value = (line.get(line.get("selection_set", SELECT)) or {}).get("loss_action")
            return float(value) if isinstance(value, int | float) else None
    return None


def _report_point(name: str, outcome: dict[str, Any], log: Log) -> None:
    if "error" in outcome:
        log(f"{name}: failed: {outcome['error']}")
    else:
        log(
            f"{name}: select top-1 {outcome['selection_acc']:.4f} (epoch {outcome['best_epoch']}, "
            f"{outcome['seconds']:.1f} s)"
        )


def _write_results(
    out: Path,
    base: TrainConfig,
    grid: dict[str, tuple[Any, ...]],
    results: list[PointResult],
    chosen: PointResult,
    jobs: int,
    given: dict[str, Any],
) -> None:
    document = {
        "format": TUNE_FORMAT,
        "split_dir": str(Path(base.split_dir or "").resolve()),
        "selection_set": SELECT,
        "criterion": "top-1 action accuracy on the selection set of each point's best.pt (its training "
        "record); ties: the lower action loss on the selection set at that epoch; then the first point",
        "grid": {option_name(k): list(v) for k, v in grid.items()},
        "jobs": jobs,
        "points": [
            {
                "name": r.name,
                "params": r.params,
                "run": str(r.run.resolve()),
                "selection_acc": r.selection_acc,
                "selection_loss": r.selection_loss,
                "best_epoch": r.best_epoch,
                "epochs_done": r.epochs_done,
                "seconds": round(r.seconds, 3),
            }
            for r in results
        ],
        "chosen": {
            "name": chosen.name,
            "params": chosen.params,
            "selection_acc": chosen.selection_acc,
            "selection_loss": chosen.selection_loss,
        },
        "chosen_config": str((out / CHOSEN_TOML).resolve()),
    }
    write_text_atomically(out / TUNE_JSON, json.dumps(document, indent=2) + "\n")
    write_text_atomically(out / CHOSEN_TOML, chosen_toml(chosen, {"split_dir": base.split_dir, **given}))


# Settings that name a file or folder: chosen.toml writes them absolute, so that it works from anywhere.
PATH_SETTINGS = ("split_dir", "tasks_file", "videos", "pretrained")


def chosen_toml(chosen: PointResult, given: dict[str, Any]) -> str:
    """A run file (``train --config``) of the settings the user gave and the chosen point's values.

    Only what was given: a setting derived from others (the learning rate of an optimizer, a head's
    width) stays derived, so a later ``--optimizer`` on the command line gets its own defaults. Paths
    are absolute.
    """
    settings = {k: v for k, v in given.items() if k not in NOT_IN_FILE and k != "out" and v is not None}
    settings |= {name.replace("-", "_") if name not in OPTION_NAMES else OPTION_NAMES[name]: value
                 for name, value in chosen.params.items()}  # fmt: skip
    for name in PATH_SETTINGS:
        if isinstance(settings.get(name), str) and not (
            name == "pretrained" and settings[name] == "kinetics400"
        ):
            settings[name] = str(Path(settings[name]).expanduser().resolve())
    lines = [
        f"# hvuaudit tune chose {chosen.name}: top-1 {chosen.selection_acc:.4f} on the selection set",
        f"# (its run: {chosen.run.resolve()}). Train with: hvuaudit train --config THIS_FILE --out runs/NAME",
        "# The settings given to tune, and the chosen values; every other setting takes its default.",
    ]
    order = [f.name for f in fields(TrainConfig)]
    for name in sorted(settings, key=order.index):
        lines.append(f"{option_name(name)} = {_toml_value(settings[name])}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # a JSON string of the text itself (no \\u escapes, which cannot spell a character beyond U+FFFF
    # in TOML) is a TOML basic string
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")  # DEL, which JSON leaves
