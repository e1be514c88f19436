"""Necessary Condition Analysis (paper §3.2, Fig. 2): the counts behind the task roles.

Sits after the store and below :mod:`hvuaudit.roles` (which turns these counts into roles);
never imports torch, the trainer or the TUI. It reads ``cooccurrence`` and produces, per
action and category, the dichotomous contingency cells of the action's most frequent tag X of
that category:

* ``n11`` clips with A and without X (above the ceiling: violates necessity),
* ``n12`` clips with A and X,
* ``n22`` clips with X and without A (``n21``, "neither", is deliberately unused).

X is necessary for A at threshold t when ``n11 / n12 <= t``. On top of the
paper it gives an exact one-sided p-value (hypergeometric tail = one-sided
Fisher test = the limit of the NCA permutation test), Benjamini–Hochberg
q-values, the Fig. 2b/c mean matrices and the Fig. 2d sweep, over every clip or only the
clips labelled for the category (``clips``). The pair-level work is SQL; Python only
post-processes whole columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import duckdb
import numpy as np
import polars as pl

from hvuaudit.categories import CLIP_MODES, DEFAULT_CLIPS, DEFAULT_THRESHOLD, with_article
from hvuaudit.errors import InputError
from hvuaudit.store import check_category, require_clips, run_query

NCA_SCHEMA = {
    "action": pl.String, "tag": pl.String, "n_action": pl.Int64, "n_tag": pl.Int64, "n11": pl.Int64,
    "n12": pl.Int64, "n22": pl.Int64, "ratio": pl.Float64, "share": pl.Float64, "necessary": pl.Boolean,
    "p_value": pl.Float64, "q_value": pl.Float64, "clips": pl.String,
}  # fmt: skip
NCA_COLUMNS = list(NCA_SCHEMA)
SWEEP_SCHEMA = {
    "category": pl.String, "threshold": pl.Float64, "actions_necessary": pl.Int64, "actions": pl.Int64,
    "share": pl.Float64, "clips": pl.String,
}  # fmt: skip
BOTH_MODES = "both"  # nca matrix / nca sweep: every clip mode, side by side


def check_threshold(value: float) -> float:
    if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
        raise InputError(f"threshold must be a number >= 0 (got {value!r})", hint="e.g. --threshold 0.2")
    return float(value)


def parse_thresholds(spec: str) -> list[float]:
    """``"0:1:0.05"`` → [0, 0.05, …, 1] (inclusive); ``"0.1,0.2"`` → [0.1, 0.2]."""
    try:
        if ":" in spec:
            start, stop, step = (float(x) for x in spec.split(":"))
            if step <= 0:
                raise InputError(
                    f"sweep step must be > 0 (got {step:g} in '{spec}')", hint="e.g. --thresholds 0:1:0.05"
                )
            if stop < start:
                raise InputError(
                    f"sweep end {stop:g} is below its start {start:g}", hint="write START:END:STEP"
                )
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError as exc:
        raise InputError(
            f"cannot read thresholds '{spec}'", hint="write START:END:STEP (0:1:0.05) or a list (0.1,0.2)"
        ) from exc
    if not values:
        raise InputError(f"no thresholds in '{spec}'")
    return [check_threshold(v) for v in values]


def _add_statistics(frame: pl.DataFrame, threshold: float, *, p_values: bool = True) -> pl.DataFrame:
    """Add ``necessary``, the hypergeometric p-value and BH q-values (vectorised over rows).

    Without ``p_values`` the two columns stay null, and scipy.stats is never imported: it is
    most of the start-up time of a command that only counts (``nca roles``, ``nca sweep``).
    """
    if not p_values:
        return frame.with_columns(
            necessary=pl.col("ratio").is_not_null() & (pl.col("ratio") <= threshold),
            p_value=pl.lit(None, dtype=pl.Float64),
            q_value=pl.lit(None, dtype=pl.Float64),
        ).select(NCA_COLUMNS[:-1])
    from scipy import stats

    has_tag = frame["tag"].is_not_null().to_numpy()
    n12 = frame["n12"].to_numpy().astype(np.int64)
    n_tag = frame["n_tag"].fill_null(0).to_numpy().astype(np.int64)
    n_action = frame["n_action"].to_numpy().astype(np.int64)
    n_clips = frame["n_clips"].to_numpy().astype(np.int64)
    # P(N12 >= n12) when the tag's clips are a random draw of n_tag out of n_clips.
    p_value = np.full(frame.height, np.nan)
    p_value[has_tag] = stats.hypergeom.sf(
        n12[has_tag] - 1, n_clips[has_tag], n_tag[has_tag], n_action[has_tag]
    )
    q_value = np.full(frame.height, np.nan)
    if has_tag.any():
        q_value[has_tag] = stats.false_discovery_control(np.clip(p_value[has_tag], 0.0, 1.0), method="bh")
    return frame.with_columns(
        necessary=pl.col("ratio").is_not_null() & (pl.col("ratio") <= threshold),
        p_value=pl.Series(p_value).fill_nan(None),
        q_value=pl.Series(q_value).fill_nan(None),
    ).select(NCA_COLUMNS[:-1])


def check_clips(clips: str) -> str:
    if clips not in CLIP_MODES:
        raise InputError(f"--clips {clips!r}: choose {' or '.join(CLIP_MODES)}")
    return clips


class NoLabelledClipsError(InputError):
    """``--clips labelled`` for a category that no clip carries a tag of (exit 3)."""

    def __init__(self, category: str, subset: str | None) -> None:
        where = f" in subset {subset!r}" if subset else ""
        super().__init__(
            f"no clip{where} carries {with_article(category)} tag, so --clips labelled has nothing to count",
            hint="use --clips all, or another --category",
        )
        self.category = category


def labelled_counts(con: duckdb.DuckDBPyConnection, category: str, subset: str | None) -> pl.DataFrame:
    """Per action, its clips labelled for ``category``; refuses a category no clip is labelled for."""
    counts = run_query(con, "internal/nca_labelled_counts", category=category, subset=subset)
    if counts.height == 0:
        raise NoLabelledClipsError(category, subset)
    return counts


def _among_labelled(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, category: str, subset: str | None
) -> pl.DataFrame:
    """Recount ``frame`` among the clips that carry a tag of ``category``: n_action, n11, ratio, share.

    n12 (clips with both) and n22 (the tag without the action) do not change: a clip with the
    tag is labelled. Actions none of whose clips is labelled drop out, so that n11 + n12 =
    n_action still holds.
    """
    counts = labelled_counts(con, category, subset)
    columns = frame.columns
    recounted = frame.drop("n_action", "n_clips").join(counts, on="action", how="inner")
    n11 = pl.col("n_action") - pl.col("n12")
    return recounted.with_columns(
        n11=n11,
        ratio=pl.when(pl.col("n12") > 0).then(n11 / pl.col("n12")).otherwise(None),
        share=n11 / pl.col("n_action"),
    ).select(columns)


def compute_nca(
    con: duckdb.DuckDBPyConnection,
    category: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    subset: str | None = None,
    all_pairs: bool = False,
    clips: str = DEFAULT_CLIPS,
    p_values: bool = True,
) -> pl.DataFrame:
    """One row per action (its top tag of ``category``), or with ``all_pairs`` every passing pair.

    ``clips="all"`` counts every clip (the paper); ``clips="labelled"`` only the clips that carry
    at least one tag of ``category``, so that a clip nobody tagged with a scene is not taken for
    a clip of the action without its scene. The top tag is the same in both modes.
    """
    check_category(category)
    check_threshold(threshold)
    check_clips(clips)
    require_clips(con, subset)
    query = "internal/nca_all_pairs" if all_pairs else "internal/nca_top_tag"
    frame = run_query(con, query, category=category, subset=subset)
    if clips == "labelled":
        frame = _among_labelled(con, frame, category, subset)
    frame = _add_statistics(frame, threshold, p_values=p_values).with_columns(clips=pl.lit(clips))
    return frame.filter(pl.col("necessary")) if all_pairs else frame


def compute_nca_or_empty(con: duckdb.DuckDBPyConnection, category: str, **options) -> pl.DataFrame:
    """:func:`compute_nca`, but a category no clip is labelled for gives no rows instead of an error.

    For views that show every category at once (the TUI's tabs): one category without labels
    must not stop the others, and its empty table says the rest.
    """
    try:
        return compute_nca(con, category, **options)
    except NoLabelledClipsError:
        return pl.DataFrame(schema=NCA_SCHEMA)


def clip_modes(clips: str) -> tuple[str, ...]:
    """The modes that ``--clips`` names: one of :data:`CLIP_MODES`, or ``both`` (Fig. 2 side by side)."""
    return CLIP_MODES if clips == BOTH_MODES else (check_clips(clips),)


def necessity_frames(
    con: duckdb.DuckDBPyConnection,
    categories: list[str] | tuple[str, ...],
    modes: tuple[str, ...],
    *,
    subset: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[tuple[str, str], pl.DataFrame]:
    """:func:`compute_nca` for every (clip mode, category), keyed so; the counts only (no p-values)."""
    return {
        (mode, category): compute_nca(
            con, category, threshold=threshold, subset=subset, clips=mode, p_values=False
        )
        for mode in modes
        for category in categories
    }


def nca_matrix(
    con: duckdb.DuckDBPyConnection,
    categories: list[str],
    *,
    subset: str | None = None,
    clips: str = DEFAULT_CLIPS,
) -> pl.DataFrame:
    """Fig. 2b/c: the mean normalised contingency table per category (n12 cell = 1), per clip mode."""
    rows = []
    for (mode, category), frame in necessity_frames(
        con, categories, clip_modes(clips), subset=subset
    ).items():
        counted = frame.filter(pl.col("n12") > 0)
        # polars types a reduction as any Python literal; the mean of a float column is a float
        rows.append(
            {
                "category": category,
                "n11": float(cast("float | None", (counted["n11"] / counted["n12"]).mean()) or 0.0),
                "n12": 1.0,
                "n22": float(cast("float | None", (counted["n22"] / counted["n12"]).mean()) or 0.0),
                "actions": counted.height,
                "clips": mode,
            }
        )
    return pl.DataFrame(rows)


def sweep_rows(frames: dict[tuple[str, str], pl.DataFrame], thresholds: list[float]) -> pl.DataFrame:
    """Per (clip mode, category, threshold): how many actions have a necessary top tag."""
    rows = []
    for (mode, category), frame in frames.items():
        ratio = frame["ratio"].drop_nulls().to_numpy()
        n_actions = frame.height
        for t in thresholds:
            necessary = int((ratio <= t).sum())
            rows.append(
                {
                    "category": category,
                    "threshold": t,
                    "actions_necessary": necessary,
                    "actions": n_actions,
                    "share": necessary / n_actions if n_actions else 0.0,
                    "clips": mode,
                }
            )
    return pl.DataFrame(rows, schema=SWEEP_SCHEMA)


def nca_sweep(
    con: duckdb.DuckDBPyConnection,
    categories: list[str],
    thresholds: list[float],
    *,
    subset: str | None = None,
    clips: str = DEFAULT_CLIPS,
) -> pl.DataFrame:
    """Fig. 2d: per category and threshold, how many actions have a necessary top tag."""
    return sweep_rows(necessity_frames(con, categories, clip_modes(clips), subset=subset), thresholds)


def plot_matrices(matrix: pl.DataFrame, path: Path) -> None:
    """Fig. 2b/c written to ``path`` (PNG, PDF or SVG by its suffix)."""
    _save(matrices_figure(matrix), path)


def matrices_figure(matrix: pl.DataFrame):
    """Fig. 2b/c: the mean normalised 2×2 tables as annotated heatmaps, a row per clip mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(matrix["clips"]))
    categories = list(dict.fromkeys(matrix["category"]))
    fig, axes = plt.subplots(
        len(modes), len(categories), figsize=(3.6 * len(categories), 3.4 * len(modes)), squeeze=False
    )
    for row in matrix.iter_rows(named=True):
        ax = axes[modes.index(row["clips"])][categories.index(row["category"])]
        # rows: action present / absent; columns: tag absent / present (Fig. 2a layout)
        cells = np.array([[row["n11"], row["n12"]], [np.nan, row["n22"]]])
        ax.imshow(np.nan_to_num(cells, nan=0.0), cmap="Blues", vmin=0, vmax=max(1.0, np.nanmax(cells)))
        for (i, j), value in np.ndenumerate(cells):
            dark = not np.isnan(value) and value > 0.5 * np.nanmax(cells)
            ax.text(
                j,
                i,
                "unused" if np.isnan(value) else f"{value:.2f}",
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
        ax.set_xticks([0, 1], ["tag absent", "tag present"])
        ax.set_yticks([0, 1], ["action", "no action"])
        ax.set_title(f"{row['category']}, {row['clips']} clips ({row['actions']} actions)")
    fig.suptitle("Mean normalised contingency table (÷ n12)")
    fig.tight_layout()
    return fig


def plot_sweep(
    sweep: pl.DataFrame,
    path: Path,
    *,
    marker: float | None = None,
    differences: pl.DataFrame | None = None,
) -> None:
    """Fig. 2d written to ``path`` (see :func:`sweep_figure`)."""
    _save(sweep_figure(sweep, marker=marker, differences=differences), path)


def sweep_figure(
    sweep: pl.DataFrame,
    *,
    marker: float | None = None,
    differences: pl.DataFrame | None = None,
):
    """Fig. 2d: actions with a necessary tag against the threshold, a panel per clip mode.

    With ``differences`` (:func:`hvuaudit.roles.share_differences`), a second row draws each
    pair's difference in share with its bootstrap confidence band; where the band clears zero,
    the roles rule can tell the two categories apart.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(sweep["clips"]))
    with_bands = differences is not None and differences.height > 0
    fig, axes = plt.subplots(
        2 if with_bands else 1,
        len(modes),
        figsize=(5.5 * len(modes), 3.8 * (2 if with_bands else 1)),
        squeeze=False,
        sharex=True,
    )
    for column, mode in enumerate(modes):
        ax = axes[0][column]
        for (category,), part in sweep.filter(pl.col("clips") == mode).group_by(
            "category", maintain_order=True
        ):
            ax.plot(part["threshold"], part["actions_necessary"], marker="o", ms=3, label=category)
        ax.set_ylabel("actions with a necessary tag")
        ax.set_title(f"{mode} clips")
        ax.legend()
        if with_bands:
            assert differences is not None  # for the type checker: with_bands says so
            band_ax = axes[1][column]
            pairs = differences.filter(pl.col("clips") == mode)
            for (category, versus), part in pairs.group_by("category", "versus", maintain_order=True):
                line = band_ax.plot(part["threshold"], part["difference"], label=f"{category} − {versus}")
                band_ax.fill_between(
                    part["threshold"], part["ci_low"], part["ci_high"], color=line[0].get_color(), alpha=0.25
                )
            band_ax.axhline(0.0, color="black", lw=0.8)
            band_ax.set_ylabel("difference in share of actions")
            band_ax.legend()
        for axis in axes[:, column]:
            if marker is not None:
                axis.axvline(marker, color="grey", ls="--", lw=1)
            axis.grid(alpha=0.3)
        axes[-1][column].set_xlabel("threshold on n11 / n12")
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> None:
    from hvucontracts.files import write_atomically

    try:
        write_atomically(
            Path(path), lambda tmp: fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")
        )
    finally:
        figure_closed(fig)


def figure_png(fig, *, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (for a page that embeds it), then closed."""
    import io

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=dpi, format="png")
    finally:
        figure_closed(fig)
    return buffer.getvalue()


def figure_closed(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
