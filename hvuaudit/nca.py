"""Necessary Condition Analysis (paper §3.2, Fig. 2): which side tasks to learn, which to unlearn.

Sits after the store: it reads ``cooccurrence`` and produces, per action and
category, the dichotomous contingency cells of the action's most frequent tag
X of that category:

* ``n11`` clips with A and without X (above the ceiling: violates necessity),
* ``n12`` clips with A and X,
* ``n22`` clips with X and without A (``n21``, "neither", is deliberately unused).

X is necessary for A at threshold t when ``n11 / n12 <= t``. On top of the
paper it gives an exact one-sided p-value (hypergeometric tail = one-sided
Fisher test = the limit of the NCA permutation test), Benjamini–Hochberg
q-values, the Fig. 2b/c mean matrices, the Fig. 2d sweep and task roles.
The pair-level work is SQL; Python only post-processes whole columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import duckdb
import numpy as np
import polars as pl
from scipy import stats

from hvuaudit.categories import CLIP_MODES, DEFAULT_CLIPS, SIDE_CATEGORIES
from hvuaudit.errors import InputError
from hvuaudit.store import check_category, require_clips, run_query
from hvucontracts import tasks
from hvucontracts.tasks import TASKS_FORMAT

NCA_COLUMNS = [
    "action", "tag", "n_action", "n_tag", "n11", "n12", "n22",
    "ratio", "share", "necessary", "p_value", "q_value", "clips",
]  # fmt: skip
ROLE_RULE = (
    "a category is auxiliary (learn it) when at least {min_share:.0%} of the actions have a necessary tag "
    "of that category at threshold {threshold} (n11/n12 <= threshold); otherwise it is adversarial (unlearn "
    "it)"
)


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


def _add_statistics(frame: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """Add ``necessary``, the hypergeometric p-value and BH q-values (vectorised over rows)."""
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


def _among_labelled(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, category: str, subset: str | None
) -> pl.DataFrame:
    """Recount ``frame`` among the clips that carry a tag of ``category``: n_action, n11, ratio, share.

    n12 (clips with both) and n22 (the tag without the action) do not change: a clip with the
    tag is labelled. Actions none of whose clips is labelled drop out, so that n11 + n12 =
    n_action still holds.
    """
    counts = run_query(con, "internal/nca_labelled_counts", category=category, subset=subset)
    if counts.height == 0:
        where = f" in subset {subset!r}" if subset else ""
        raise InputError(
            f"no clip{where} carries a {category} tag, so --clips labelled has nothing to count",
            hint="use --clips all, or another --category",
        )
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
    threshold: float = 0.2,
    subset: str | None = None,
    all_pairs: bool = False,
    clips: str = DEFAULT_CLIPS,
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
    frame = _add_statistics(frame, threshold).with_columns(clips=pl.lit(clips))
    return frame.filter(pl.col("necessary")) if all_pairs else frame


def nca_matrix(
    con: duckdb.DuckDBPyConnection,
    categories: list[str],
    *,
    subset: str | None = None,
    clips: str = DEFAULT_CLIPS,
) -> pl.DataFrame:
    """Fig. 2b/c: the mean normalised contingency table per category (n12 cell = 1)."""
    rows = []
    for category in categories:
        frame = compute_nca(con, category, subset=subset, clips=clips).filter(pl.col("n12") > 0)
        # polars types a reduction as any Python literal; the mean of a float column is a float
        rows.append(
            {
                "category": category,
                "n11": float(cast("float | None", (frame["n11"] / frame["n12"]).mean()) or 0.0),
                "n12": 1.0,
                "n22": float(cast("float | None", (frame["n22"] / frame["n12"]).mean()) or 0.0),
                "actions": frame.height,
                "clips": clips,
            }
        )
    return pl.DataFrame(rows)


def nca_sweep(
    con: duckdb.DuckDBPyConnection,
    categories: list[str],
    thresholds: list[float],
    *,
    subset: str | None = None,
    clips: str = DEFAULT_CLIPS,
) -> pl.DataFrame:
    """Fig. 2d: per category and threshold, how many actions have a necessary top tag."""
    rows = []
    for category in categories:
        frame = compute_nca(con, category, subset=subset, clips=clips)
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
                    "clips": clips,
                }
            )
    return pl.DataFrame(rows)


@dataclass(frozen=True)
class TaskRoles:
    """What ``tasks.json`` holds; the trainer reads ``roles`` to set each head's sign."""

    threshold: float
    min_share: float
    roles: dict[str, str]
    evidence: dict[str, dict[str, float | int]]
    subset: str | None

    def as_json(self) -> dict:
        body = asdict(self)
        return {
            "format": TASKS_FORMAT,
            "rule": ROLE_RULE.format(min_share=self.min_share, threshold=self.threshold),
            **body,
        }


def recommend_roles(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: float = 1.0,
    min_share: float = 0.5,
    subset: str | None = None,
    categories: tuple[str, ...] = SIDE_CATEGORIES,
) -> TaskRoles:
    """Auxiliary when ≥ ``min_share`` of actions have a necessary tag of the category, else adversarial."""
    check_threshold(threshold)
    if not 0.0 < min_share <= 1.0:
        raise InputError(f"--min-share must be in (0, 1] (got {min_share})")
    sweep = nca_sweep(con, list(categories), [threshold], subset=subset)
    roles, evidence = {}, {}
    for row in sweep.iter_rows(named=True):
        roles[row["category"]] = "auxiliary" if row["share"] >= min_share else "adversarial"
        evidence[row["category"]] = {
            "actions_necessary": row["actions_necessary"],
            "actions": row["actions"],
            "share": round(row["share"], 6),
        }
    return TaskRoles(threshold=threshold, min_share=min_share, roles=roles, evidence=evidence, subset=subset)


def write_tasks(roles: TaskRoles, path: Path) -> None:
    tasks.write_tasks(path, roles.as_json())


def plot_matrices(matrix: pl.DataFrame, path: Path) -> None:
    """Fig. 2b/c: the mean normalised 2×2 tables side by side, as annotated heatmaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, matrix.height, figsize=(3.6 * matrix.height, 3.4), squeeze=False)
    for ax, row in zip(axes[0], matrix.iter_rows(named=True), strict=True):
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
        ax.set_title(f"{row['category']} ({row['actions']} actions)")
    fig.suptitle("Mean normalised contingency table (÷ n12)")
    fig.tight_layout()
    _save(fig, path)


def plot_sweep(sweep: pl.DataFrame, path: Path, *, marker: float | None = None) -> None:
    """Fig. 2d: actions with a necessary tag against the threshold, one curve per category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for (category,), part in sweep.group_by("category", maintain_order=True):
        ax.plot(part["threshold"], part["actions_necessary"], marker="o", ms=3, label=category)
    if marker is not None:
        ax.axvline(marker, color="grey", ls="--", lw=1)
    ax.set_xlabel("threshold on n11 / n12")
    ax.set_ylabel("actions with a necessary tag")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from hvucontracts.files import write_atomically

    write_atomically(
        Path(path), lambda tmp: fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")
    )
    plt.close(fig)
