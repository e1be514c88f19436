"""The roles rule: which side categories to learn (auxiliary) and which to unlearn (adversarial).

Where it sits: on top of :mod:`hvuaudit.nca` (the per-action counts), below the CLI
(``hvuaudit nca roles``, ``nca sweep``), the TUI's NCA screen and the demo. It writes the
tasks.json that ``hvuaudit train --tasks`` reads through :mod:`hvucontracts.tasks`. It never
imports torch, the trainer, the evaluator or the TUI.

The rule compares categories, as the paper's Fig. 2d does, instead of holding each one to a
fixed share (docs/nca.md, "The roles rule"):

* at a threshold t and a clip mode, each category's *share* is the fraction of actions whose
  top tag of that category is necessary (n11/n12 <= t);
* for every pair of categories, the difference in share gets a percentile bootstrap interval
  over actions (the actions are resampled with replacement; one draw serves every threshold,
  clip mode and pair, so that the intervals are comparable);
* a category whose interval lies wholly below another's is **adversarial**; one that lies
  wholly above another's and below none is **auxiliary**; one that no interval separates from
  the others is **undecided**;
* the **band** of a category, in a clip mode, is the interval of thresholds around
  :data:`DEFAULT_THRESHOLD` where its verdict stays the same and decided. A share, and so every
  resampled share and the verdict, changes only where t crosses an action's ratio, so the band
  is found exactly by looking at every ratio of the data, not at a grid. An empty band makes
  the role undecided, which the trainer refuses. A threshold outside the band gets a warning
  naming the threshold where the verdict changes, and so does a verdict that the other clip
  mode does not share; the warnings go into tasks.json.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from hvuaudit.categories import CLIP_MODES, DEFAULT_CLIPS, DEFAULT_THRESHOLD, STUDY_CATEGORIES
from hvuaudit.errors import ConflictError, InputError
from hvuaudit.nca import NoLabelledClipsError, check_clips, check_threshold, necessity_frames, sweep_rows
from hvucontracts import tasks
from hvucontracts.tasks import TASKS_FORMAT, UNDECIDED

ROLE_RULE = (
    "at each threshold and clip mode, the share of actions whose top tag is necessary (n11/n12 <= "
    "threshold) is compared between categories with a {confidence:.0%} percentile bootstrap interval over "
    "actions, backed by an exact sign test on the actions where the two differ: a category clearly below "
    "another (interval below 0 and sign test significant) is adversarial (unlearn it); one clearly above "
    "another and below none is auxiliary (learn it); one that nothing separates is undecided. The band is "
    "the interval of thresholds around {anchor:g} where a category keeps one decided verdict"
)
DIFFERENCE_COLUMNS = {
    "clips": pl.String,
    "threshold": pl.Float64,
    "category": pl.String,
    "versus": pl.String,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "sign_test_p": pl.Float64,
    "confidence": pl.Float64,
    "resamples": pl.Int64,
    "seed": pl.Int64,
}


@dataclass(frozen=True)
class BootstrapSpec:
    """How the intervals are drawn; recorded with every interval so that it can be repeated."""

    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.resamples, int) or not 100 <= self.resamples <= 100_000:
            raise InputError(f"--resamples must be an integer from 100 to 100,000 (got {self.resamples!r})")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise InputError(f"--seed must be an integer from 0 to 2**32 - 1 (got {self.seed!r})")
        if not 0.5 <= self.confidence < 1.0:
            raise InputError(f"--confidence must be in [0.5, 1) (got {self.confidence!r})", hint="e.g. 0.95")

    def as_json(self) -> dict[str, Any]:
        return {
            "resamples": self.resamples,
            "confidence": self.confidence,
            "seed": self.seed,
            "method": "percentile; actions resampled with replacement, one draw for every threshold, "
            "clip mode and pair",
        }


def _resample_counts(n_items: int, spec: BootstrapSpec) -> np.ndarray:
    """(resamples × n_items): how often each item is drawn in each resample with replacement."""
    rng = np.random.default_rng(spec.seed)
    draws = rng.integers(0, n_items, size=(spec.resamples, n_items))
    offsets = (np.arange(spec.resamples) * n_items)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=spec.resamples * n_items)
    return counts.reshape(spec.resamples, n_items).astype(np.float32)  # small integers: exact


class _Shares:
    """One category in one clip mode: its share of actions with a necessary tag at any threshold.

    The actions are kept sorted by ratio, with the running sum of each resample's draw counts,
    so that the share at t, in the data and in every resample, is one lookup at the number of
    ratios <= t: any number of thresholds costs no more than the draw itself.
    """

    def __init__(self, frame: pl.DataFrame, index: dict[str, int], weights: np.ndarray) -> None:
        rows = np.array([index[a] for a in frame["action"].to_list()], dtype=np.int64)
        ratio = frame["ratio"].fill_null(np.inf).to_numpy()  # no tag at all: never necessary
        order = np.argsort(ratio, kind="stable")
        self.ratios = ratio[order]
        # per action of the universe: its ratio (inf: no tag), NaN where the action is not counted
        self.by_action = np.full(len(index), np.nan)
        self.by_action[rows] = ratio
        self.running = np.zeros((weights.shape[0], rows.size + 1), dtype=np.float32)
        np.cumsum(weights[:, rows[order]], axis=1, out=self.running[:, 1:])

    def at(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(share in the data, per threshold; share in each resample: resamples × thresholds)."""
        necessary = np.searchsorted(self.ratios, thresholds, side="right")
        counted = max(self.ratios.size, 1)
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample that drew none of them: NaN
            resampled = self.running[:, necessary] / self.running[:, -1:]
        return necessary / counted, resampled


class ShareBootstrap:
    """The shares of every (clip mode, category) of ``frames`` under one bootstrap draw of the actions."""

    def __init__(self, frames: dict[tuple[str, str], pl.DataFrame], spec: BootstrapSpec) -> None:
        self.spec = spec
        self.categories = list(dict.fromkeys(category for _, category in frames))
        self.modes = list(dict.fromkeys(mode for mode, _ in frames))
        # every action of any frame, so that the same draw serves every mode and category
        actions = sorted({a for frame in frames.values() for a in frame["action"].to_list()})
        index = {action: i for i, action in enumerate(actions)}
        weights = _resample_counts(max(len(actions), 1), spec)
        self.shares = {key: _Shares(frame, index, weights) for key, frame in frames.items()}

    def breakpoints(self, mode: str) -> list[float]:
        """The thresholds where a share of ``mode`` can change: every finite ratio of its categories."""
        ratios = np.concatenate([self.shares[(mode, c)].ratios for c in self.categories])
        return sorted(float(r) for r in np.unique(ratios[np.isfinite(ratios)]))

    def separations(self, thresholds: list[float], mode: str) -> pl.DataFrame:
        """Per pair and threshold, only whether the interval lies above or below 0: what the verdict needs.

        Columns ``above`` and ``below``: the same answer as :meth:`table`'s ``ci_low > 0`` and
        ``ci_high < 0`` (numpy's linear percentile; a test compares them at every ratio of the
        validation file), found by counting the resampled differences on each side of 0, which
        needs no sort. Only where the count leaves it open (0 between the two order statistics
        that the percentile interpolates) is the percentile computed.
        """
        grid = np.asarray(thresholds, dtype=np.float64)
        tail = (1.0 - self.spec.confidence) / 2
        rows = []
        for category, versus in itertools.combinations(self.categories, 2):
            spread = self.shares[(mode, category)].at(grid)[1] - self.shares[(mode, versus)].at(grid)[1]
            significant = _sign_test(self.shares[(mode, category)], self.shares[(mode, versus)], grid) < (
                1.0 - self.spec.confidence
            )
            above = _percentile_above_zero(spread, tail) & significant
            # ci_high < 0: the upper percentile of the spread is minus the lower one of -spread
            below = _percentile_above_zero(-spread, tail) & significant
            for j, t in enumerate(thresholds):
                rows.append(
                    {"clips": mode, "threshold": t, "category": category, "versus": versus,
                     "above": bool(above[j]), "below": bool(below[j])}
                )  # fmt: skip
        return pl.DataFrame(rows)

    def table(self, thresholds: list[float], modes: list[str] | None = None) -> pl.DataFrame:
        """Per mode, pair of categories and threshold: the difference in share with its interval."""
        grid = np.asarray(thresholds, dtype=np.float64)
        tail = (1.0 - self.spec.confidence) / 2
        rows = []
        for mode in modes or self.modes:
            for category, versus in itertools.combinations(self.categories, 2):
                point_c, boot_c = self.shares[(mode, category)].at(grid)
                point_v, boot_v = self.shares[(mode, versus)].at(grid)
                with np.errstate(invalid="ignore"):
                    low, high = np.nanquantile(boot_c - boot_v, [tail, 1.0 - tail], axis=0)
                sign_p = _sign_test(self.shares[(mode, category)], self.shares[(mode, versus)], grid)
                for j, t in enumerate(thresholds):
                    rows.append(
                        {
                            "clips": mode,
                            "threshold": t,
                            "category": category,
                            "versus": versus,
                            "difference": float(point_c[j] - point_v[j]),
                            "ci_low": float(low[j]),
                            "ci_high": float(high[j]),
                            "sign_test_p": float(sign_p[j]),
                            "confidence": self.spec.confidence,
                            "resamples": self.spec.resamples,
                            "seed": self.spec.seed,
                        }
                    )
        return pl.DataFrame(rows, schema=DIFFERENCE_COLUMNS)


@functools.lru_cache(maxsize=65536)
def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test (McNemar's exact test): ``wins`` against ``losses``, ties left out.

    The percentile bootstrap collapses to a point when every action agrees (one action, or
    eight that all favour one category), so its interval alone cannot tell "no evidence" from
    "clear evidence"; the sign test on the actions where the two categories disagree can.
    """
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / 2**n)


def _discordant(a: _Shares, b: _Shares, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per threshold: actions counted for both where only ``a``'s tag is necessary, and where only ``b``'s."""
    both = ~np.isnan(a.by_action) & ~np.isnan(b.by_action)
    nec_a = a.by_action[both, None] <= grid[None, :]
    nec_b = b.by_action[both, None] <= grid[None, :]
    return (nec_a & ~nec_b).sum(axis=0), (~nec_a & nec_b).sum(axis=0)


def _sign_test(a: _Shares, b: _Shares, grid: np.ndarray) -> np.ndarray:
    wins, losses = _discordant(a, b, grid)
    return np.array([sign_test_p(int(won), int(lost)) for won, lost in zip(wins, losses, strict=True)])


def _percentile_above_zero(values: np.ndarray, tail: float) -> np.ndarray:
    """Per column of ``values`` (resamples × thresholds): is its ``tail`` percentile above 0?

    numpy's linear percentile at h = tail·(n−1) lies between the order statistics k = ⌊h⌋ and
    k+1. With m values ≤ 0, x_(k) > 0 exactly when m ≤ k; when m = k+1 only the interpolation
    decides, so those columns (and any with a NaN) get the percentile itself.
    """
    n = values.shape[0]
    h = tail * (n - 1)
    k, fraction = int(np.floor(h)), h - np.floor(h)
    at_or_below = (values <= 0).sum(axis=0)
    result = at_or_below <= k
    unsure = ((at_or_below == k + 1) & (fraction > 0)) | np.isnan(values).any(axis=0)
    if unsure.any():
        with np.errstate(invalid="ignore"):
            result[unsure] = np.nanquantile(values[:, unsure], tail, axis=0) > 0
    return result


def share_differences(
    frames: dict[tuple[str, str], pl.DataFrame], thresholds: list[float], spec: BootstrapSpec
) -> pl.DataFrame:
    """For every clip mode, pair of categories and threshold: the difference in share with its interval.

    ``frames`` is :func:`hvuaudit.nca.necessity_frames`. An action counts for a category in a
    mode when it has a row there (in ``labelled`` mode, an action none of whose clips carries
    the category drops out); the share is over those actions, in the data and in each resample.
    """
    return ShareBootstrap(frames, spec).table(thresholds)


def verdicts(
    differences: pl.DataFrame, categories: tuple[str, ...]
) -> dict[tuple[str, float], dict[str, str]]:
    """The rule at every (clip mode, threshold) of ``differences``: category → role or undecided.

    ``differences`` is :meth:`ShareBootstrap.table` (intervals) or :meth:`ShareBootstrap.separations`
    (only which side of 0 each interval lies on).
    """
    if "above" not in differences.columns:
        # NaN (no resample could count) is no evidence; polars would order it above every number
        low, high = pl.col("ci_low").fill_nan(None), pl.col("ci_high").fill_nan(None)
        significant = pl.col("sign_test_p") < 1.0 - pl.col("confidence")
        differences = differences.with_columns(
            above=(low > 0).fill_null(False) & significant, below=(high < 0).fill_null(False) & significant
        )
    out: dict[tuple[str, float], dict[str, str]] = {}
    for (mode, threshold), part in differences.group_by("clips", "threshold", maintain_order=True):
        above, below = set(), set()
        for row in part.iter_rows(named=True):
            if row["above"]:  # the category's share is clearly above the other's
                above.add(row["category"])
                below.add(row["versus"])
            elif row["below"]:
                above.add(row["versus"])
                below.add(row["category"])
        out[(str(mode), float(threshold))] = {
            c: "adversarial" if c in below else "auxiliary" if c in above else UNDECIDED for c in categories
        }
    return out


@dataclass(frozen=True)
class Band:
    """Where a category's verdict holds in one clip mode: ``low <= t < high`` (no ``high``: no end)."""

    verdict: str  # the verdict at the anchor, or undecided when the band is empty
    low: float | None
    high: float | None  # the first threshold above the band where the verdict changes
    anchor: float
    below: str | None = None  # the verdict just below ``low`` (None when ``low`` is 0 or the band is empty)
    above: str | None = None  # the verdict from ``high`` on

    @property
    def empty(self) -> bool:
        return self.low is None

    def holds_at(self, threshold: float) -> bool:
        if self.low is None:
            return False
        return self.low <= threshold and (self.high is None or threshold < self.high)

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "low": self.low, "high": self.high, "anchor": self.anchor}

    def describe(self) -> str:
        if self.low is None:
            return "empty"
        return f"[{self.low:.4g}, {'∞' if self.high is None else f'{self.high:.4g}'})"  # low <= t < high


def find_band(verdict_at: list[str], points: list[float], anchor: float) -> Band:
    """The run of ``points`` around ``anchor`` with the anchor's verdict, when that is decided.

    ``points`` are sorted and hold every threshold where the verdict can change; ``verdict_at``
    is the verdict there, which holds up to the next point.
    """
    start = points.index(anchor)
    verdict = verdict_at[start]
    if verdict == UNDECIDED:
        return Band(UNDECIDED, None, None, anchor)
    low = high = start
    while low > 0 and verdict_at[low - 1] == verdict:
        low -= 1
    while high < len(points) - 1 and verdict_at[high + 1] == verdict:
        high += 1
    return Band(
        verdict,
        points[low],
        points[high + 1] if high + 1 < len(points) else None,
        anchor,
        below=verdict_at[low - 1] if low > 0 else None,
        above=verdict_at[high + 1] if high + 1 < len(points) else None,
    )


@dataclass(frozen=True)
class TaskRoles:
    """What ``tasks.json`` holds; the trainer reads ``roles`` to set each head's sign."""

    threshold: float
    clips: str
    subset: str | None
    categories: tuple[str, ...]
    roles: dict[str, str]
    bands: dict[str, dict[str, Band]]  # clip mode → category → band (``roles`` follow ``clips``)
    warnings: list[str]
    evidence: dict[str, dict[str, dict[str, Any]]]  # clip mode → category → counts and verdict
    differences: dict[str, list[dict[str, Any]]]  # clip mode → pairs at the threshold
    bootstrap: BootstrapSpec = field(default_factory=BootstrapSpec)
    anchor: float = DEFAULT_THRESHOLD

    def band(self, category: str) -> Band:
        """The band that decided ``category``'s role: the one of the chosen clip mode."""
        return self.bands[self.clips][category]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": TASKS_FORMAT,
            "rule": ROLE_RULE.format(confidence=self.bootstrap.confidence, anchor=self.anchor),
            "threshold": self.threshold,
            "clips": self.clips,
            "subset": self.subset,
            "categories": list(self.categories),
            "roles": self.roles,
            "bands": {
                mode: {c: band.as_json() for c, band in by_category.items()}
                for mode, by_category in self.bands.items()
            },
            "warnings": self.warnings,
            "evidence": self.evidence,
            "differences": self.differences,
            "bootstrap": self.bootstrap.as_json(),
        }


def _check_categories(categories: tuple[str, ...]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(categories))
    if len(unique) < 2:
        raise InputError(
            f"the roles rule compares categories, but only {', '.join(unique) or 'none'} was given",
            hint="give at least two, e.g. --category scene --category object",
        )
    return unique


def _frames_of_every_mode(
    con: duckdb.DuckDBPyConnection, categories: tuple[str, ...], clips: str, subset: str | None
) -> tuple[dict[tuple[str, str], pl.DataFrame], list[str]]:
    """The counts of the chosen mode (its errors stop the command) and of the other mode when it can count."""
    frames = necessity_frames(con, categories, (clips,), subset=subset)
    warnings, unlabelled = [], []
    for mode in CLIP_MODES:
        if mode == clips:
            continue
        for category in categories:
            try:
                frames.update(necessity_frames(con, (category,), (mode,), subset=subset))
            except NoLabelledClipsError:
                unlabelled.append(category)
        if unlabelled:  # a mode is evidence only when it can count every category
            frames = {key: frame for key, frame in frames.items() if key[0] != mode}
            them = "it" if len(unlabelled) == 1 else "them"
            warnings.append(
                f"{', '.join(unlabelled)}: no clip is labelled for {them}, so only {clips} clips were counted"
            )
    return frames, warnings


def recommend_roles(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    clips: str = DEFAULT_CLIPS,
    subset: str | None = None,
    categories: tuple[str, ...] = STUDY_CATEGORIES,
    bootstrap: BootstrapSpec | None = None,
    anchor: float = DEFAULT_THRESHOLD,
) -> TaskRoles:
    """The role of each category at ``threshold`` in ``clips`` mode, with its bands and evidence.

    The other clip mode is computed too: its verdict is evidence, and a warning says when it
    disagrees (missing labels then change the answer).
    """
    threshold = check_threshold(threshold)
    check_clips(clips)
    categories = _check_categories(categories)
    spec = bootstrap or BootstrapSpec()
    frames, warnings = _frames_of_every_mode(con, categories, clips, subset)
    boot = ShareBootstrap(frames, spec)
    modes = boot.modes

    bands: dict[str, dict[str, Band]] = {}
    at_threshold: dict[str, dict[str, str]] = {}
    for mode in modes:
        points = sorted({*boot.breakpoints(mode), 0.0, anchor, threshold})
        by_point = verdicts(boot.separations(points, mode), categories)
        at_threshold[mode] = by_point[(mode, threshold)]
        bands[mode] = {
            c: find_band([by_point[(mode, t)][c] for t in points], points, anchor) for c in categories
        }

    roles = {}
    for category in categories:
        band, here = bands[clips][category], at_threshold[clips][category]
        if band.empty:
            roles[category] = UNDECIDED
            warnings.append(
                f"{category}: undecided: at threshold {anchor:g} with {clips} clips neither the bootstrap "
                "interval nor the sign test separates it from the other categories, so its band is empty; "
                "the trainer refuses it"
            )
        elif band.holds_at(threshold):
            roles[category] = band.verdict
        else:
            roles[category] = here
            warnings.append(_flip_warning(category, band, threshold, clips, here))
        for (
            mode
        ) in modes:  # the evidence of each mode at the threshold, not the role (which follows the band)
            if mode != clips and at_threshold[mode][category] != here:
                warnings.append(
                    f"{category}: the clip modes disagree at threshold {threshold:g}: {here} with {clips} "
                    f"clips, {at_threshold[mode][category]} with {mode} clips; missing labels change the "
                    "verdict here"
                )

    evidence: dict[str, dict[str, dict[str, Any]]] = {mode: {} for mode in modes}
    for row in sweep_rows(frames, [threshold]).iter_rows(named=True):
        evidence[row["clips"]][row["category"]] = {
            "actions_necessary": row["actions_necessary"],
            "actions": row["actions"],
            "share": round(row["share"], 6),
            "verdict": at_threshold[row["clips"]][row["category"]],
        }
    measured = ("category", "versus", "difference", "ci_low", "ci_high", "sign_test_p")
    pairs = {
        mode: [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items() if k in measured}
               for row in boot.table([threshold], [mode]).iter_rows(named=True)]
        for mode in modes
    }  # fmt: skip
    return TaskRoles(
        threshold=threshold,
        clips=clips,
        subset=subset,
        categories=categories,
        roles=roles,
        bands=bands,
        warnings=warnings,
        evidence=evidence,
        differences=pairs,
        bootstrap=spec,
        anchor=anchor,
    )


def _flip_warning(category: str, band: Band, threshold: float, clips: str, here: str) -> str:
    """Name the threshold at the band's edge, on the user's side, where the verdict changes."""
    assert band.low is not None  # only called for a non-empty band
    if threshold < band.low:
        change = f"below {band.low:.4g} it is {band.below}"
    else:
        assert band.high is not None  # a threshold above a band means the band has an end
        change = f"from {band.high:.4g} on it is {band.above}"
    return (
        f"{category}: threshold {threshold:g} lies outside its band {band.describe()} ({clips} clips), where "
        f"it is {band.verdict}; the verdict changes at the band's edge: {change}, so at {threshold:g} it is "
        f"{here}"
    )


def roles_tables(roles: TaskRoles) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What ``nca roles`` prints: the verdict per category, and the intervals at the threshold."""
    verdict_rows = []
    for category, role in roles.roles.items():
        row: dict[str, Any] = {
            "category": category,
            "role": role,
            "band": roles.band(category).describe(),
            "in_band": roles.band(category).holds_at(roles.threshold),
        }
        for mode, by_category in roles.evidence.items():  # each mode's evidence: necessary tags, verdict
            counts = by_category[category]
            row[f"{mode} clips"] = f"{counts['actions_necessary']}/{counts['actions']} {counts['verdict']}"
        verdict_rows.append(row)
    interval_rows = [{"clips": mode, **pair} for mode, pairs in roles.differences.items() for pair in pairs]
    return pl.DataFrame(verdict_rows), pl.DataFrame(interval_rows)


def write_tasks(roles: TaskRoles, path: Path) -> None:
    """Write tasks.json; an existing file is replaced only when it is a tasks file itself (exit 5 else), and
    never a DuckDB store or a special file (the TUI's `w` and `nca roles -o` both come here)."""
    from hvucontracts.files import refuse_overwriting

    path = Path(path)
    refuse_overwriting(path, [])
    if path.exists():
        try:
            tasks.read_tasks(path)
        except tasks.TasksFileError as exc:
            raise ConflictError(
                f"{path} exists and is not a tasks file ({exc.message}); it is left alone",
                hint="choose another file name for tasks.json",
            ) from exc
    tasks.write_tasks(path, roles.as_json())
