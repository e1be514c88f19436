"""The run folder: what ``hvuaudit train`` writes and ``eval``, ``report``, ``plot`` and the demo read.

Where it sits: the trainer (``trainer.train``) writes a run folder, the evaluator
(``hvueval``) and the demo (``hvudemo``) read it. The file names and the readers of
its JSON files live here, once. A run folder holds:

* ``config.json``: every resolved setting of the run (``trainer.config.TrainConfig``),
  with the split's variant and label counts;
* ``metrics.jsonl``: one JSON line per finished epoch: ``train`` metrics, ``selection_set`` (the set
  that model selection read: ``select``, else ``val``) and that set's metrics under its name
  (:func:`selection_metrics`);
* ``checkpoint.pt`` (the last epoch) and ``best.pt`` (the best on the selection set),
  written atomically and checked by their zip CRC-32 on load;
* ``eval.json`` and ``features.npz``: what ``hvuaudit eval`` measured and saved;
* ``preflight.json``/``preflight_problems.csv`` (and ``eval_*``): the clips that could
  not be used;
* ``.hvuaudit-owned.json``: the ownership marker (:mod:`hvucontracts.files`).

Standard library only. Never imports ``hvuaudit``, ``trainer`` or torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hvucontracts.errors import InputError, MissingArtifactError

EVAL_FORMAT = "hvuaudit-eval/1"  # eval.json
CHECKPOINT_FORMAT = "hvuaudit-checkpoint/1"  # checkpoint.pt and best.pt
RUN_KIND = "run"  # the kind in a run folder's ownership marker
CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
EVAL = "eval.json"
FEATURES = "features.npz"
PREFLIGHT = "preflight.json"
PREFLIGHT_PROBLEMS = "preflight_problems.csv"
EVAL_PREFLIGHT = "eval_preflight.json"
EVAL_PREFLIGHT_PROBLEMS = "eval_preflight_problems.csv"
RUN_FILES = (
    CONFIG,
    METRICS,
    CHECKPOINT,
    BEST,
    EVAL,
    FEATURES,
    PREFLIGHT,
    PREFLIGHT_PROBLEMS,
    EVAL_PREFLIGHT,
    EVAL_PREFLIGHT_PROBLEMS,
)
CHECKPOINTS = {"best": BEST, "last": CHECKPOINT}  # `hvuaudit eval --checkpoint` names
# `hvuaudit train --tensorboard`: TensorBoard event files (one per call of train) in this folder of the run;
# --force removes the files of this pattern in it and nothing else.
TENSORBOARD = "tensorboard"
TENSORBOARD_EVENTS = "events.out.tfevents.*"


class RunFileError(InputError):
    """A run-folder file that exists but cannot be read or has the wrong shape (exit 3)."""


def selection_metrics(line: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The selection set of one metrics.jsonl line and its metrics (lines from before select.csv: val)."""
    name = line.get("selection_set", "val")
    if not isinstance(name, str) or not isinstance(line.get(name), dict):
        raise RunFileError(f"a {METRICS} line names selection set {name!r} but holds no metrics for it")
    return name, line[name]


def is_run_folder(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def require_run_dir(run_dir: Path | str) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MissingArtifactError(f"run folder {run_dir} does not exist; train one with `hvuaudit train`")
    return run_dir


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders among ``paths``; a folder without config.json stands for the run folders inside it."""
    found: dict[Path, None] = {}  # ordered set
    for path in paths:
        if is_run_folder(path):
            found[path] = None
            continue
        children = sorted(child for child in path.iterdir() if is_run_folder(child))
        if not children:
            raise MissingArtifactError(
                f"{path} is not a run folder (no {CONFIG}) and holds none; "
                "pass the folders written by `hvuaudit train`, e.g. runs/*"
            )
        found.update(dict.fromkeys(children))
    return list(found)


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a run folder (config.json, eval.json), with a clear error when it is not one."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(
            f"could not read {path} ({exc}); rewrite it, or move that run folder aside"
        ) from exc
    if not isinstance(content, dict):
        raise RunFileError(f"{path} must hold a JSON object, not {type(content).__name__}")
    return content


def read_config_or_empty(run_dir: Path) -> dict[str, Any]:
    """config.json of a run, or {} when it is missing or unreadable (for labels only, never for numbers)."""
    try:
        return read_json_object(Path(run_dir) / CONFIG)
    except RunFileError:
        return {}


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """The epoch lines of ``metrics.jsonl``, oldest first; a damaged line is an error that names it."""
    run_dir = require_run_dir(run_dir)
    path = run_dir / METRICS
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
            raise RunFileError(
                f"{path}: line {number} is not JSON ({exc}); the file was damaged. "
                f"`hvuaudit train --out {run_dir} --resume` rewrites it from the last checkpoint"
            ) from exc
    return lines
