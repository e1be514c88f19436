"""What a demo runs: its settings, methods, evaluation sets and training jobs (shared by every demo module).

Torch-free and store-free: plain dataclasses and constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from hvuaudit.categories import DEFAULT_THRESHOLD
from hvuaudit.errors import ExitCode, HvuauditError, InputError

DEMO_FORMAT = "hvuaudit-demo/1"


DEMO_KIND = "demo"  # the kind in a demo folder's ownership marker


METHODS = ("baseline", "mtl", "amt-no-object", "amt", "amt-dcorr", "amt-cdcorr", "amt-ensemble")


METHOD_NAMES = {
    "baseline": "Baseline",
    "mtl": "MTL (scene learned)",
    "amt-no-object": "AMT w/o object",
    "amt": "AMT",
    "amt-dcorr": "AMT, dcorr² penalty",
    "amt-cdcorr": "AMT, dcorr² within each action",
    "amt-ensemble": "AMT, ensemble of 4 heads",
}

# The demo's methods that are the trainer's AMT with another --adversary (issue 22): (method, adversary).
TRAINED_AS = {
    "amt-dcorr": ("amt", "dcorr"),
    "amt-cdcorr": ("amt", "cdcorr"),
    "amt-ensemble": ("amt", "ensemble"),
}
# The adversaries compared in "Removing the scene" (REPORT.md), GRL first: AMT as the paper trains it.
ADVERSARY_METHODS = ("amt", "amt-dcorr", "amt-cdcorr", "amt-ensemble")
# The penalties' λ is chosen on the first seed's selection set (select.csv, seen pairs), never on the test
# pairs: of LAMBDA_GRID, the largest λ whose best selection accuracy is within SELECTION_TOLERANCE of the
# grid's best. A stronger penalty removes more of the scene; the rule takes the strongest that costs
# nothing measurable on the pairs the model was trained on.
PENALTY_METHODS = ("amt-dcorr", "amt-cdcorr")
LAMBDA_GRID = (0.3, 1.0, 3.0, 10.0)
SELECTION_TOLERANCE = 0.01


# The tool's one default (hvuaudit.categories): the benchmark's top objects sit at n11/n12 <= 0.15
# and its top scene at 0.75, so 0.2 separates them with room on both sides.
NCA_THRESHOLD = DEFAULT_THRESHOLD


EVAL_SETS = {
    "val": "scene-invariant: the rare (action, scene) pairs that SI-2 keeps out of training",
    "indist": "in-distribution: held-out clips of the biased training pairs",
    "uniform": "uniform: every scene equally often with every action",
}


Log = Callable[[str], None]


class DemoError(HvuauditError):
    """A step of the demo failed (a run crashed, a split broke an invariant); the message names its log."""

    exit_code = ExitCode.UNEXPECTED


# Settings added after demo.json's format was fixed -> what a demo.json without them ran with. Only those
# whose every earlier demo ran as the value says: a setting whose meaning was new changes the demo.
ADDED_SETTINGS = {"objects": "family"}


@dataclass(frozen=True)
class DemoSettings:
    """What a demo runs; stored in demo.json so a rerun can reuse finished steps."""

    quick: bool
    seeds: tuple[int, ...]
    clips: int
    epochs: int
    sensitivity: bool
    """λ ∈ {0.1, 0.3, 1.0} without the DANN ramp and the literal Eq. 3, on the first seed."""
    control: bool = True
    """Train one baseline on clips with random scenes (first seed): is the task learnable?"""
    methods: tuple[str, ...] = METHODS
    batch_size: int = 64
    max_lr: float = 3e-3
    probe_curves: bool = True
    """Probe the first seed's adversaries after every epoch (REPORT.md's figure of probes by epoch)."""
    objects: str = "family"
    """The benchmark's object scheme (:data:`hvudemo.videoset.OBJECT_SCHEMES`): how the shape follows the
    action."""

    def as_json(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds), "methods": list(self.methods)}

    @staticmethod
    def stored_as_json(stored: dict) -> dict:
        """``stored`` (demo.json's settings) with each setting added since at the value that the versions
        before it used (ADDED_SETTINGS), so that a demo of the same settings is reused after an upgrade."""
        return {**ADDED_SETTINGS, **stored}


def demo_settings(*, quick: bool, seeds: int | None, objects: str = "family") -> DemoSettings:
    """Full: 3 seeds × 3,000 clips × 12 epochs (the prototype's recipe), 4 methods, the control and the sweep.

    Quick (CI): 1 seed, 2,000 clips, 10 epochs, baseline and AMT only, neither control
    nor sweep. With fewer optimiser steps (1,200 clips × 8 epochs)
    the baseline never learned the motion and the check "the baseline learned motion"
    failed: the adversary can only help once the motion cue is learned. The four methods
    took 3.5 minutes on a busy 2-core machine, over the CI budget of 3.
    """
    n_seeds = seeds if seeds is not None else (1 if quick else 3)
    if n_seeds < 1:
        raise InputError(f"--seeds must be at least 1 (got {n_seeds})")
    from hvudemo.videoset import OBJECT_SCHEMES  # checked before a demo folder records the settings

    if objects not in OBJECT_SCHEMES:
        raise InputError(f"--objects must be one of {', '.join(OBJECT_SCHEMES)} (got {objects!r})")
    if quick:
        return DemoSettings(
            quick=True,
            seeds=tuple(range(n_seeds)),
            clips=2000,
            epochs=10,
            sensitivity=False,
            control=False,
            methods=("baseline", "amt"),
            probe_curves=False,
            objects=objects,
        )
    return DemoSettings(
        quick=False, seeds=tuple(range(n_seeds)), clips=3000, epochs=12, sensitivity=True, objects=objects
    )


@dataclass(frozen=True)
class TrainJob:
    """One run: what to train, where, and how; picklable for the worker processes."""

    name: str
    group: str  # main | control | sensitivity
    method: str
    seed: int
    split_dir: str
    run_dir: str
    log: str
    analysis: str
    epochs: int
    batch_size: int
    max_lr: float
    tasks_file: str | None = None
    lambda_magnitude: float | None = None
    adv_schedule: str = "dann"
    adversary: str = "grl"
    adversary_heads: int | None = None  # --adversary ensemble: K [default: the trainer's]
    probe_every_epoch: bool = False  # train epoch by epoch and probe the uniform set after each
    label: str = ""


@dataclass(frozen=True)
class DemoResult:
    out: Path
    report: Path
    summary: dict  # what results.json holds


def seed_dir(out: Path, seed: int) -> Path:
    return out / f"seed{seed}"
