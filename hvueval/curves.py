"""Fig. 4: action and scene-head accuracy per epoch, and the per-head losses, from ``metrics.jsonl``.

Reads run folders only (:func:`hvucontracts.runfolder.read_metrics`); never imports torch
or ``hvuaudit``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hvucontracts import runfolder
from hvueval.errors import EvalError
from hvueval.plotting import (
    CURVE_PANEL_PX,
    TITLE_PX,
    _grid,
    _roles_note,
    losses_path,
    new_figure,
    run_label,
    save_figure,
)


def read_epochs(run_dir: Path) -> list[dict[str, Any]]:
    """The epoch lines of a run's ``metrics.jsonl``, oldest first; a run without any is an error."""
    lines = runfolder.read_metrics(run_dir)
    if not lines:
        path = Path(run_dir) / runfolder.METRICS
        raise EvalError(
            f"{path}: holds no epoch yet; let `hvuaudit train --out {run_dir}` finish an epoch first"
        )
    return lines


def _series(lines: list[dict[str, Any]], side: str, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of ``key`` in the train metrics (``side`` "train") or the selection set's (the
    set model selection read: select, else val), where it is a number (heads a run lacks are null)."""
    epochs, values = [], []
    for line in lines:
        metrics = line.get("train") if side == "train" else runfolder.selection_metrics(line)[1]
        value = (metrics or {}).get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            epochs.append(int(line["epoch"]))
            values.append(float(value))
    return epochs, values


def _selection_name(lines: list[dict[str, Any]]) -> str:
    """The name of the set that a run selected on, for the legend ("select", or "val")."""
    return runfolder.selection_metrics(lines[0])[0] if lines else "val"


def _phase_changes(lines: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """(x, new phase) where the phase changes, e.g. pretrain -> finetune for pretrain-adv."""
    out = []
    for before, after in zip(lines, lines[1:], strict=False):
        if before.get("phase") != after.get("phase"):
            out.append((before["epoch"] + 0.5, str(after.get("phase"))))
    return out


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
    """Fig. 4: action and scene-head accuracy per epoch (train solid, selection set dashed), a panel per
    run."""
    fig, axes = _curve_axes(len(runs), "Action accuracy and scene-head accuracy per epoch (Fig. 4)")
    for ax, (run_dir, lines) in zip(axes, runs, strict=True):
        config = runfolder.read_config_or_empty(run_dir)
        for head, colour in CURVE_HEADS:
            for side, style in (("train", "-"), (_selection_name(lines), "--")):
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
    """Raw (unweighted) loss of each head per epoch (train solid, selection set dashed), one panel per run."""
    fig, axes = _curve_axes(len(runs), "Loss of each head per epoch (raw, before the λ/γ weights)")
    for ax, (run_dir, lines) in zip(axes, runs, strict=True):
        config = runfolder.read_config_or_empty(run_dir)
        values_seen: list[float] = []
        for key, head, colour in LOSS_HEADS:
            for side, style in (("train", "-"), (_selection_name(lines), "--")):
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
    runs = [(Path(r), read_epochs(Path(r))) for r in run_dirs]
    if not runs:
        raise EvalError("no run folder given; pass one or more, e.g. runs/si2_amt")
    output = Path(output)
    return (
        save_figure(draw_accuracy_curves(runs), output),
        save_figure(draw_loss_curves(runs), losses_path(output)),
    )
