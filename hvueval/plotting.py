"""What every figure of the evaluator shares: pixel-exact matplotlib figures, atomic saving, run labels.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot, no
global backend) and written atomically (:func:`hvucontracts.files.write_atomically`).
Image sizes are set in pixels, so a figure's size follows from its layout alone.
Never imports torch or ``hvuaudit``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from PIL import Image

from hvucontracts import runfolder
from hvucontracts.files import write_atomically
from hvueval.errors import EvalError

DPI = 100
# t-SNE: above this many clips a seeded random subsample is embedded (the figure says so).
DEFAULT_MAX_POINTS = 5000
# t-SNE legends: the most frequent classes get their own colour, the rest are grey "other".
MAX_COLOURED_CLASSES = 18
# Grad-CAM strips show at most this many evenly spaced frames; the GIF shows every frame.
MAX_STRIP_FRAMES = 8
HEAT_ALPHA = 0.45
GIF_PANEL_PX = 160
GIF_LABEL_PX = 30
GIF_FRAME_MS = 125

# Layout in pixels at DPI (so the image size of each figure is known exactly).
CURVE_PANEL_PX = (420, 340)
TSNE_PANEL_PX = 500
TITLE_PX = 50
LEGEND_ROW_PX = 30
LEGEND_COLUMNS = 6
STRIP_CELL_PX = 140
STRIP_ROW_TITLE_PX = 50


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- writing
def new_figure(width_px: int, height_px: int) -> Figure:
    """A Figure that saves to exactly width_px × height_px at DPI.

    Agg truncates figsize·dpi to an int, and 4.3 · 100 is 429.99…, so a quarter pixel
    is added to land on the intended integer.
    """
    return Figure(figsize=((width_px + 0.25) / DPI, (height_px + 0.25) / DPI), dpi=DPI, layout="constrained")


def _prepare_output(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise EvalError(f"{path}: is a folder; give a file name such as {path / 'figure.png'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, or no permission
        raise EvalError(f"{path.parent}: could not be created ({exc}); choose another output path") from exc
    return path


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` atomically; the format follows the suffix (.png, .pdf, .svg)."""
    path = _prepare_output(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=DPI))
    except ValueError as exc:  # matplotlib: unknown format
        raise EvalError(f"{path}: cannot write a .{fmt} figure ({exc}); use .png, .pdf or .svg") from exc
    return path


def save_gif(frames: Sequence[Image.Image], path: Path, *, frame_ms: int = GIF_FRAME_MS) -> Path:
    """An endlessly looping animated GIF, written atomically."""
    path = _prepare_output(path)
    write_atomically(
        path,
        lambda tmp: frames[0].save(
            tmp, format="GIF", save_all=True, append_images=list(frames[1:]), duration=frame_ms, loop=0
        ),
    )
    return path


def losses_path(curves_path: Path) -> Path:
    """Where the per-head losses go: ``curves.png`` -> ``curves_losses.png``."""
    curves_path = Path(curves_path)
    return curves_path.with_name(f"{curves_path.stem}_losses{curves_path.suffix or '.png'}")


# --------------------------------------------------------------------------- run folders
def run_label(run_dir: Path, config: dict[str, Any] | None = None) -> str:
    """``NAME (method, backbone)``, e.g. ``si2_amt (amt, r3d18)``."""
    config = runfolder.read_config_or_empty(run_dir) if config is None else config
    parts = [str(config[k]) for k in ("method", "backbone") if config.get(k)]
    return f"{Path(run_dir).name} ({', '.join(parts)})" if parts else Path(run_dir).name


def _roles_note(config: dict[str, Any]) -> str:
    """The auxiliary tasks and their signed weights, e.g. ``scene adversarial (λ=-0.3) · object auxiliary
    (γ=1)``."""
    tasks = config.get("tasks") or {}
    parts = []
    for head, weight, symbol in (("scene", "lambda", "λ"), ("object", "gamma", "γ")):
        role = tasks.get(head)
        if role:
            value = config.get(weight)
            parts.append(
                f"{head} {role}" + (f" ({symbol}={value:g})" if isinstance(value, int | float) else "")
            )
    return " · ".join(parts) or "action head only"


def _grid(n: int, max_columns: int = 3) -> tuple[int, int]:
    columns = min(n, max_columns)
    return math.ceil(n / columns), columns
