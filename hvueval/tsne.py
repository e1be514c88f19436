"""Fig. 5: a t-SNE of the features that ``hvuaudit eval`` saved (``features.npz``), by action and by scene.

Every panel shows the same clips, embedded once per run with a seeded scikit-learn
t-SNE. Never imports torch or ``hvuaudit``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hvucontracts import runfolder
from hvueval.errors import EvalError, MissingArtifactError
from hvueval.plotting import (
    DEFAULT_MAX_POINTS,
    LEGEND_COLUMNS,
    LEGEND_ROW_PX,
    MAX_COLOURED_CLASSES,
    TITLE_PX,
    TSNE_PANEL_PX,
    _grid,
    new_figure,
    run_label,
    save_figure,
)


# --------------------------------------------------------------------------- Fig. 5: t-SNE
@dataclass(frozen=True)
class RunFeatures:
    """One evaluated set of a run, from ``features.npz`` (rows in the same order everywhere)."""

    run_dir: Path
    set_name: str
    features: np.ndarray  # (n, d) float32
    action: np.ndarray  # (n,) int64, index into action_names
    pred: np.ndarray  # (n,) int64
    scene: np.ndarray  # (n,) str: the chosen scene, else the first scene tag, else "(no scene)"
    clip_id: np.ndarray  # (n,) str
    action_names: list[str]
    eval_metrics: dict[str, Any]
    """This set's entry of eval.json (top1, dcorr2, ...)."""

    def labels(self, color: str) -> np.ndarray:
        return np.array(self.action_names, dtype=str)[self.action] if color == "action" else self.scene


def _eval_first(run_dir: Path, path: Path, what: str) -> MissingArtifactError:
    return MissingArtifactError(
        f"{path}: missing, so {run_dir} has {what}; run `hvuaudit eval {run_dir}` first "
        "(it writes eval.json and features.npz)"
    )


def load_features(run_dir: str | Path, set_name: str = "val") -> RunFeatures:
    """The features ``hvuaudit eval`` saved for one set of a run."""
    run_dir = runfolder.require_run_dir(Path(run_dir))
    eval_path, npz_path = run_dir / runfolder.EVAL, run_dir / runfolder.FEATURES
    if not eval_path.is_file():
        raise _eval_first(run_dir, eval_path, "not been evaluated")
    if not npz_path.is_file():
        raise _eval_first(run_dir, npz_path, "no saved features")
    try:
        doc = json.loads(eval_path.read_text())  # read here, not by runfolder: one message for either file
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError, as is a bad zip
        raise EvalError(
            f"{run_dir}: eval.json or features.npz could not be read ({exc}); run `hvuaudit eval {run_dir}` "
            "again"
        ) from exc
    sets = [str(s) for s in arrays.get("sets", [])]
    if set_name not in sets:
        raise EvalError(
            f"{npz_path}: has no set {set_name!r} (it has {', '.join(sets) or 'none'}); pass --set with one "
            f"of those, or evaluate it with `hvuaudit eval {run_dir} --sets {set_name}`"
        )
    needed = [f"{set_name}_{key}" for key in ("features", "action", "pred", "scene", "scenes", "clip_id")]
    lacking = [key for key in (*needed, "action_names") if key not in arrays]
    if lacking:
        raise EvalError(
            f"{npz_path}: lacks {', '.join(lacking)} (an older `hvuaudit eval` wrote it); "
            f"run `hvuaudit eval {run_dir}` again"
        )
    chosen, tags = arrays[f"{set_name}_scene"], arrays[f"{set_name}_scenes"]
    scene = np.array(
        [c or (t.split("|")[0] if t else "(no scene)") for c, t in zip(chosen, tags, strict=True)], dtype=str
    )
    return RunFeatures(
        run_dir=run_dir,
        set_name=set_name,
        features=arrays[f"{set_name}_features"].astype(np.float32),
        action=arrays[f"{set_name}_action"].astype(np.int64),
        pred=arrays[f"{set_name}_pred"].astype(np.int64),
        scene=scene,
        clip_id=arrays[f"{set_name}_clip_id"].astype(str),
        action_names=[str(a) for a in arrays["action_names"]],
        eval_metrics=(doc.get("sets") or {}).get(set_name) or {},
    )


def select_clips(runs: Sequence[RunFeatures], *, max_points: int, seed: int) -> tuple[np.ndarray, int]:
    """The clip ids every run has, subsampled to ``max_points`` with a seeded RNG.

    Returns (chosen clip ids in the first run's order, how many were available). The
    same clips are drawn in every panel so the runs are compared on equal terms.
    """
    shared = set(runs[0].clip_id.tolist())
    for run in runs[1:]:
        shared &= set(run.clip_id.tolist())
    available = np.array([c for c in runs[0].clip_id if c in shared], dtype=str)
    if len(available) == 0:
        raise EvalError(
            f"the runs share no {runs[0].set_name} clip ({', '.join(str(r.run_dir) for r in runs)}); "
            "compare runs evaluated on the same split"
        )
    if len(available) <= max_points:
        return available, len(available)
    keep = np.sort(np.random.default_rng(seed).choice(len(available), size=max_points, replace=False))
    return available[keep], len(available)


def tsne_perplexity(n: int) -> float:
    """scikit-learn's default 30, lowered for small sets (it must stay below n; (n - 1) / 3 keeps
    about three perplexities' worth of neighbours)."""
    return float(min(30.0, max(1.0, (n - 1) / 3)))


def embed_tsne(features: np.ndarray, *, seed: int) -> np.ndarray:
    """(n, d) -> (n, 2) with scikit-learn's t-SNE (PCA init, seeded), on one thread.

    Barnes-Hut sums forces across OpenMP threads, so more threads could change the last
    bits from run to run; one thread makes the same seed give the same picture.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(features)
    if n < 5:
        raise EvalError(f"t-SNE needs at least 5 clips; only {n} are available")
    tsne = TSNE(
        n_components=2, perplexity=tsne_perplexity(n), init="pca", learning_rate="auto", random_state=seed
    )
    with threadpool_limits(limits=1):
        return tsne.fit_transform(np.asarray(features, dtype=np.float64)).astype(np.float32)


def class_colours(labels: np.ndarray) -> tuple[dict[str, Any], int]:
    """A colour for each of the most frequent classes (ties by name); (colours, classes left grey)."""
    names, counts = np.unique(labels, return_counts=True)
    order = sorted(range(len(names)), key=lambda i: (-counts[i], str(names[i])))
    # tab20's strong colours, then its light ones (neighbours in tab20 are hard to tell apart);
    # its two greys are kept for "other"
    tab20_map = colormaps["tab20"]
    assert isinstance(tab20_map, ListedColormap)  # tab20 is a listed (qualitative) colormap
    # the stubs type .colors as any ArrayLike; tab20's is a sequence of RGB tuples
    tab20 = cast("Sequence[tuple[float, float, float]]", tab20_map.colors)
    palette = [tab20[i] for i in (*range(0, 20, 2), *range(1, 20, 2)) if i not in (14, 15)]
    top = [str(names[i]) for i in order[:MAX_COLOURED_CLASSES]]
    return {name: palette[k] for k, name in enumerate(top)}, len(names) - len(top)


@dataclass(frozen=True)
class TsneEmbedding:
    """The same clips embedded once per run; colouring by action or by scene reuses it."""

    runs: list[RunFeatures]
    clip_ids: np.ndarray  # (n_shown,) str, the clips drawn in every panel
    rows: list[np.ndarray]  # per run: (n_shown,) row indices of clip_ids in its features.npz
    embeddings: list[np.ndarray]  # per run: (n_shown, 2)
    n_available: int
    max_points: int
    seed: int

    @property
    def n_shown(self) -> int:
        return len(self.clip_ids)


def compute_tsne(
    run_dirs: Sequence[str | Path],
    *,
    set_name: str = "val",
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
) -> TsneEmbedding:
    """t-SNE of each run's features of ``set_name`` on the same (subsampled) clips."""
    if max_points < 5:
        raise EvalError(f"--max-points {max_points}: t-SNE needs at least 5")
    if not run_dirs:
        raise EvalError("no run folder given; pass one or more, e.g. runs/si2_amt")
    runs = [load_features(r, set_name) for r in run_dirs]
    chosen, n_available = select_clips(runs, max_points=max_points, seed=seed)
    rows = []
    for run in runs:
        row_of = {c: i for i, c in enumerate(run.clip_id)}
        rows.append(np.array([row_of[c] for c in chosen], dtype=np.int64))
    return TsneEmbedding(
        runs=runs,
        clip_ids=chosen,
        rows=rows,
        embeddings=[embed_tsne(run.features[r], seed=seed) for run, r in zip(runs, rows, strict=True)],
        n_available=n_available,
        max_points=max_points,
        seed=seed,
    )


def draw_tsne(embedding: TsneEmbedding, color: str) -> Figure:
    """Fig. 5: one panel per run, points coloured by action or scene; the title states the sample."""
    if color not in ("action", "scene"):
        raise EvalError(f"--color {color!r}: choose action or scene")
    runs = embedding.runs
    labels = [run.labels(color)[r] for run, r in zip(runs, embedding.rows, strict=True)]
    colours, n_grey = class_colours(labels[0])  # the same clips, so the same true labels, in every panel
    other = "0.75"
    n_entries = len(colours) + (1 if n_grey else 0)
    legend_rows = math.ceil(n_entries / LEGEND_COLUMNS)
    rows, columns = _grid(len(runs))
    fig = new_figure(TSNE_PANEL_PX * columns, TSNE_PANEL_PX * rows + TITLE_PX + LEGEND_ROW_PX * legend_rows)
    n, seed = embedding.n_shown, embedding.seed
    if n < embedding.n_available:
        sample = (
            f"{n} of {embedding.n_available} clips "
            f"(random subsample above --max-points {embedding.max_points}, seed {seed})"
        )
    else:
        sample = f"all {n} clips (seed {seed})"
    fig.suptitle(
        f"t-SNE of the {runs[0].set_name} features coloured by {color}: {sample}; "
        f"perplexity {tsne_perplexity(n):.3g}",
        fontsize=10,
    )
    axes = list(fig.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[len(runs) :]:
        ax.set_visible(False)
    for ax, run, xy, names in zip(axes, runs, embedding.embeddings, labels, strict=False):
        point_colours = [colours.get(str(name), other) for name in names]
        ax.scatter(xy[:, 0], xy[:, 1], c=point_colours, s=8 if n > 500 else 18, linewidths=0)
        metrics = run.eval_metrics
        scores = []
        if isinstance(metrics.get("top1"), int | float):
            scores.append(f"top-1 {metrics['top1']:.3f}")
        if isinstance(metrics.get("dcorr2"), int | float):
            scores.append(f"dcorr² {metrics['dcorr2']:.3f}")
        ax.set_title(f"{run_label(run.run_dir)}\n{' · '.join(scores)}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=name) for name, c in colours.items()]
    if n_grey:
        handles.append(
            Line2D([], [], marker="o", linestyle="", color=other, label=f"other ({n_grey} classes)")
        )
    fig.legend(handles=handles, loc="outside lower center", ncol=LEGEND_COLUMNS, fontsize=8, frameon=False)
    return fig


def plot_tsne(
    run_dirs: Sequence[str | Path],
    output: str | Path,
    *,
    color: str = "action",
    set_name: str = "val",
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
) -> tuple[Path, TsneEmbedding]:
    """Fig. 5 for ``run_dirs`` into ``output``; returns the path and the embedding drawn."""
    if color not in ("action", "scene"):  # before the slow part
        raise EvalError(f"--color {color!r}: choose action or scene")
    embedding = compute_tsne(run_dirs, set_name=set_name, max_points=max_points, seed=seed)
    return save_figure(draw_tsne(embedding, color), Path(output)), embedding
