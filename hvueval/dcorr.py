"""Exact squared distance correlation (dcorr²) between features and labels, computed blockwise.

Where it sits: run folder → ``hvueval.evaluate`` (features of the validation clips vs their
chosen scene) → ``eval.json``; ``hvuaudit dcorr`` exposes it for anyone's features. It is the
paper's measure of how much scene information the features carry (section 3.5): 0 means none.

Why blockwise: ``dcor`` builds two dense n×n float64 distance matrices (16·n² bytes, 15 GB at
HVU's 31k validation clips). Every quantity dcorr² needs is a sum over the pairwise-distance
matrix, so this module accumulates those sums over tiles of it and never holds an n×n array:
memory is O(n·d + tile²). The answer is exact, not a sketch: it agrees with
``dcor.distance_correlation_sqr`` (V-statistic, the paper's; measured ~1e-8 relative) and
``dcor.u_distance_correlation_sqr`` (bias-corrected U-statistic) to a relative 1e-6, or an
absolute 1e-8 where the U-statistic is sampling noise around 0.

With a = feature distances and b = label distances, both statistics are functions of
  S_ab = Σ_ij a_ij·b_ij,  R_ab = Σ_i a_i·b_i (row sums a_i = Σ_j a_ij),  T_a = Σ_ij a_ij,
and the same for (a, a) and (b, b). The tiles feed the row sums of a, Σ a² and S_ab.
One-hot labels give b_ij = √2·[s_i ≠ s_j], so S_ab = √2·(T_a − Σ_class within-class sums of a)
and every sum about b follows from the class sizes: no label matrix at all. Multi-hot labels
(several scenes per clip) get their own distance tile next to the feature one.

Precision: tiles are float32 matmuls (the only O(n²·d) work), every sum is accumulated in
float64, and the features are centred and scaled to unit RMS norm first so float32 loses as
little as possible. Below 2048 samples the tiles are float64 instead: that costs milliseconds
there, and small n leaves the U-statistic no averaging to hide float32 rounding in (6e-6 at
n = 9). Σ a² is summed from the same tiles rather than from its closed form
2n·Σ||x_i||² − 2||Σx_i||²: dcov² cancels its terms ~1000-fold for high-d features, and mixing
exact and float32-rounded terms measured 100× less accurate. Only the tiles on and above the
diagonal are computed (the matrix is symmetric).

It never imports ``hvuaudit``; torch is imported only when the torch backend runs.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hvueval.errors import EvalError

CPU_TILE = 1024  # 4 MB float32 tiles: GEMM-efficient, and L2/L3 friendly for the passes after it
CUDA_TILE = 4096  # larger tiles amortise kernel-launch overhead on a GPU
_PREP_ROWS = 8192  # rows per chunk when centring, so no float64 copy of the features is made
FLOAT64_BELOW = 2048  # samples; see "Precision" above

Backend = Literal["auto", "numpy", "torch"]


@dataclass(frozen=True)
class DcorrResult:
    """Both dcorr² estimates of one pass, with what it took to compute them."""

    n: int
    dcorr2: float  # V-statistic, equal to dcor.distance_correlation_sqr (the paper's)
    dcorr2_u: float  # bias-corrected U-statistic, equal to dcor.u_distance_correlation_sqr
    seconds: float
    backend: str  # "numpy", "torch:cpu", "torch:cuda:0", ...
    tile: int
    tile_dtype: str  # "float32", or "float64" below FLOAT64_BELOW samples


@dataclass(frozen=True)
class _DistanceSums:
    """The three sums of one pair of distance matrices that dcov² is built from."""

    cross: float  # S = Σ_ij a_ij·b_ij
    row_dot: float  # R = Σ_i a_i·b_i over row sums
    totals: float  # T_a·T_b


Y_KINDS = ("categorical", "continuous")


def distance_correlation_sqr(
    features: Any,
    labels: Any,
    *,
    unbiased: bool = False,
    tile: int | None = None,
    device: str = "cpu",
    y_kind: str | None = None,
) -> float:
    """Squared distance correlation between (n, d) features and labels.

    ``labels`` is a 1-D array of class ids (ints or strings, treated as one-hot) or an (n, k)
    0/1 multi-hot array; with ``y_kind="continuous"`` it is (n,) or (n, k) real values, compared
    by Euclidean distance as ``dcor`` does. ``unbiased=False`` gives the V-statistic
    (``dcor.distance_correlation_sqr``), ``True`` the U-statistic (``dcor.u_distance_correlation_sqr``).
    See :func:`distance_correlation_stats`.
    """
    result = distance_correlation_stats(features, labels, tile=tile, device=device, y_kind=y_kind)
    return result.dcorr2_u if unbiased else result.dcorr2


def distance_correlation_stats(
    features: Any,
    labels: Any,
    *,
    tile: int | None = None,
    device: str = "cpu",
    backend: Backend = "auto",
    y_kind: str | None = None,
) -> DcorrResult:
    """V- and U-statistic dcorr² of features vs labels in one blockwise pass.

    Args:
        features: (n, d) numpy array, or a torch tensor (a CUDA tensor runs on its GPU).
        labels: (n,) class ids, or (n, k) 0/1 multi-hot; with ``y_kind="continuous"``, (n,) or
            (n, k) real values. Rows in the same order as ``features``.
        y_kind: "categorical", "continuous", or None: class ids and 0/1 multi-hot are categorical, and
            real values that are not whole numbers are refused rather than guessed at.
        tile: side of the distance tiles; default 1024 on CPU, 4096 on CUDA.
        device: "cpu" or a CUDA device ("cuda", "cuda:1"); ignored when ``features`` is a CUDA tensor.
        backend: "auto" (numpy on CPU, torch on CUDA), or force "numpy" / "torch" (benchmarks).

    Raises:
        EvalError: n < 4, lengths differ, non-finite features, labels that are neither
            class ids nor 0/1 multi-hot, or a backend that cannot run on the device.

    Constant features or a single label value give 0.0 (as ``dcor`` defines it), never NaN.
    """
    started = time.perf_counter()
    device = _resolve_device(features, device)
    if backend == "auto":
        # numpy (OpenBLAS) measured as fast as torch on CPU and skips torch's import; see BENCHMARKS.md.
        backend = "numpy" if device == "cpu" else "torch"
    if backend == "numpy" and device != "cpu":
        raise EvalError(f"the numpy backend runs on CPU only, not on {device!r}; use backend='torch'")

    points = _as_feature_matrix(features)  # (n, d), any float dtype, possibly on a GPU
    n = points.shape[0]
    if y_kind not in (None, *Y_KINDS):
        raise EvalError(f"y_kind {y_kind!r}: choose categorical or continuous")
    continuous = _continuous_labels(labels, n) if y_kind == "continuous" else None
    label_codes, multi_hot = (
        (np.empty(0, np.int64), None) if continuous is not None else _encode_labels(labels, n, y_kind)
    )
    tile = tile or (CPU_TILE if device == "cpu" else CUDA_TILE)
    if tile < 1:
        raise EvalError(f"tile must be a positive number of rows, got {tile}")

    tile_dtype = "float64" if n < FLOAT64_BELOW else "float32"
    ops = _NumpyOps(tile, tile_dtype) if backend == "numpy" else _TorchOps(tile, tile_dtype, device)
    # Sorting by class makes each class a contiguous run of rows, so the same-class pairs of a
    # tile are a few rectangles near its diagonal: no (tile, tile) label mask is ever built.
    # The rows are sorted while they are centred, so no second copy of the features is made.
    order = (
        None if multi_hot is not None or continuous is not None else np.argsort(label_codes, kind="stable")
    )
    with ops.exact_matmul():
        unit_points = ops.centred_unit_rms(points, order)  # (n, d) tile dtype; None if all rows are equal
        unit_labels = ops.centred_unit_rms(continuous, None) if continuous is not None else None
        if unit_points is None or (continuous is not None and unit_labels is None):
            dcorr2 = dcorr2_u = 0.0
        elif unit_labels is not None:
            dcorr2, dcorr2_u = _dcorr_distances(ops, unit_points, unit_labels)
        elif multi_hot is not None:
            dcorr2, dcorr2_u = _dcorr_multi_hot(ops, unit_points, multi_hot)
        else:
            dcorr2, dcorr2_u = _dcorr_one_hot(ops, unit_points, label_codes[order])
    return DcorrResult(
        n=n,
        dcorr2=dcorr2,
        dcorr2_u=dcorr2_u,
        seconds=time.perf_counter() - started,
        backend=ops.name,
        tile=tile,
        tile_dtype=tile_dtype,
    )


# --- input checks -------------------------------------------------------------------------


def _resolve_device(features: Any, device: str) -> str:
    torch = sys.modules.get("torch")  # a tensor can only exist if torch was imported
    if torch is not None and isinstance(features, torch.Tensor) and features.device.type != "cpu":
        return str(features.device)
    if device != "cpu" and not device.startswith("cuda"):
        raise EvalError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    return device


def _as_feature_matrix(features: Any) -> Any:
    """Check shape and finiteness; a CUDA tensor stays one so its features stay on their GPU."""
    torch: Any = sys.modules.get("torch")  # None unless the caller imported torch
    if torch is not None and isinstance(features, torch.Tensor) and features.device.type == "cpu":
        features = features.detach().numpy()
    is_tensor = torch is not None and isinstance(features, torch.Tensor)
    points: Any = features.detach() if is_tensor else np.asarray(features)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2:
        raise EvalError(f"features must be an (n, d) array, got shape {tuple(points.shape)}")
    real = (
        not (points.dtype.is_complex or points.dtype == torch.bool)
        if is_tensor
        else np.issubdtype(points.dtype, np.integer) or np.issubdtype(points.dtype, np.floating)
    )
    if not real:
        raise EvalError(f"features must be real numbers, got dtype {points.dtype}")
    n = points.shape[0]
    if n < 4:
        raise EvalError(
            f"distance correlation needs at least 4 samples (the U-statistic divides by n-3), got {n}"
        )
    finite = torch.isfinite(points).all(dim=1).cpu().numpy() if is_tensor else np.isfinite(points).all(axis=1)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite)
        raise EvalError(
            f"features contain NaN or infinite values in {bad_rows.size} of {n} rows "
            f"(first rows: {', '.join(map(str, bad_rows[:5]))}); drop or impute those rows first"
        )
    return points


def _labels_as_numpy(labels: Any) -> Any:
    """A torch tensor of labels as numpy (detached; bfloat16 widened), anything else as it is."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu()
        return (labels.float() if labels.dtype == torch.bfloat16 else labels).numpy()
    return labels


def _continuous_labels(labels: Any, n: int) -> np.ndarray:
    """(n, k) float64 real-valued labels (a 1-D array is one column); finite numbers only."""
    labels = _labels_as_numpy(labels)
    if np.iscomplexobj(labels):
        raise EvalError("continuous labels must be real numbers, not complex ones")
    try:
        values = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EvalError(
            f"continuous labels must be numbers ({exc}); names are categorical labels (--y-kind categorical)"
        ) from exc
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != n or values.shape[1] == 0:
        raise EvalError(
            f"continuous labels must be (n,) or (n, k ≥ 1) with n = {n} rows, got shape {values.shape}"
        )
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise EvalError(
            f"continuous labels are missing or not finite in {bad.sum()} of {n} rows (first rows: "
            f"{', '.join(map(str, np.flatnonzero(bad)[:5]))}); drop those rows from features and labels"
        )
    return values


def _encode_labels(labels: Any, n: int, y_kind: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (class codes 0..k-1, None) for one-hot labels, or (empty, (n, k) 0/1) for multi-hot.

    A 2-D array whose rows each hold exactly one 1 is one-hot in disguise and takes the fast path.
    Without ``y_kind``, real values that are not whole numbers are refused: treating each distinct value
    as a class is rarely what was meant, and ``dcor`` would read them as distances.
    """
    values = np.asarray(_labels_as_numpy(labels))
    if y_kind is None and _looks_continuous(values):
        raise EvalError(
            "the labels are real numbers (not all whole, or many distinct values), so they may be "
            "continuous; say which they are",
            hint="--y-kind continuous (Euclidean distances, as dcor) or --y-kind categorical (each value a "
            "class); from Python, y_kind='continuous' or 'categorical'",
        )
    if values.shape[0] != n:
        raise EvalError(
            f"features have {n} rows but labels have {values.shape[0]}; they must match row for row"
        )
    if values.ndim == 1:
        missing = np.array([value is None or value != value for value in values.tolist()])  # NaN != NaN
        if missing.any():
            raise EvalError(
                f"labels are missing in {missing.sum()} of {n} rows (first rows: "
                f"{', '.join(map(str, np.flatnonzero(missing)[:5]))}); drop those rows from features and "
                "labels"
            )
        _, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64), None
    if values.ndim != 2:
        raise EvalError(f"labels must be (n,) class ids or (n, k) multi-hot, got shape {values.shape}")
    if not np.isin(values, (0, 1)).all():
        raise EvalError(
            "2-D categorical labels must be 0/1 multi-hot (one column per class); pass class ids as a 1-D "
            "array, or real-valued labels with y_kind='continuous' (--y-kind continuous)"
        )
    per_row = values.sum(axis=1)
    if (per_row == 1).all():
        return values.argmax(axis=1).astype(np.int64), None
    return np.empty(0, np.int64), values.astype(np.uint8)


MANY_VALUES = 50  # more distinct whole-number floats than this (and than a tenth of n) read as measurements


def _looks_continuous(values: np.ndarray) -> bool:
    """Real numbers (floats, or text written as floats: '0.5', '1e3') that are not all whole numbers, or
    that take many distinct values: measurements rather than class ids. Integers and text such as '3'
    stay class ids."""
    if values.dtype.kind in "iub" or values.size == 0:
        return False
    if values.dtype.kind == "f":
        numbers = values
    elif values.dtype.kind in "UO":
        texts = [str(v) for v in values.ravel().tolist()]
        if not any(any(c in t for c in ".eE") for t in texts):
            return False  # '3', '17': class ids written as text
        try:
            numbers = np.asarray(texts, dtype=np.float64)
        except (TypeError, ValueError):
            return False
    else:
        return False
    finite = numbers[np.isfinite(numbers)]
    if not finite.size:
        return False
    many = np.unique(finite).size > max(MANY_VALUES, finite.size // 10)
    return many or not np.array_equal(finite, np.round(finite))


# --- reading features and labels from files (`hvuaudit dcorr`) -----------------------------


def read_features_file(path: Path) -> np.ndarray:
    """(n, d) features from a .npy file, or from Parquet with one list/array column or only numeric columns.

    Every problem is a :class:`EvalError` that names the file and says how to fix it.
    """
    if path.suffix == ".npy":
        try:
            with path.open("rb") as file:
                # np.load takes anything without the .npy header for a pickle, and says so
                if file.read(6) != b"\x93NUMPY":
                    raise ValueError("it has no .npy header")
                file.seek(0)
                features = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise EvalError(
                f"could not read {path} as a .npy array ({exc}); write it with numpy.save"
            ) from exc
    elif path.suffix == ".parquet":
        features = _read_parquet_features(path)
    else:
        raise EvalError(f"{path}: features must be a .npy or .parquet file (got '{path.suffix}')")
    if features.ndim not in (1, 2) or not (
        np.issubdtype(features.dtype, np.integer) or np.issubdtype(features.dtype, np.floating)
    ):
        raise EvalError(
            f"{path} holds a {features.dtype} array of shape {features.shape}; "
            "features must be an (n, d) array of numbers, one row per sample"
        )
    finite = np.isfinite(features).reshape(features.shape[0], -1).all(axis=1)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite)
        raise EvalError(
            f"{path} contains NaN or infinite values in {bad_rows.size} of {finite.size} rows "
            f"(first rows: {', '.join(map(str, bad_rows[:5]))}); drop those rows from both files, or impute "
            "them"
        )
    return features


def _read_parquet_features(path: Path) -> np.ndarray:
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first_line = str(exc).splitlines()[0]
        raise EvalError(f"could not read {path} as Parquet ({first_line})") from exc
    nested = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List | pl.Array)]
    if len(nested) == 1 and frame.width == 1:
        column = frame[nested[0]]
        if isinstance(column.dtype, pl.List):
            widths = column.list.len().unique()
            if widths.len() != 1 or column.null_count():
                raise EvalError(f"{path}: the rows of column '{nested[0]}' must all have the same length")
            column = column.list.to_array(int(widths[0]))
        return column.to_numpy()  # (n, d)
    not_numeric = [name for name, dtype in frame.schema.items() if not dtype.is_numeric()]
    if not_numeric or frame.width == 0:
        raise EvalError(
            f"{path} must hold either one list/array column or only numeric columns, one per dimension; "
            f"drop these columns: {', '.join(not_numeric) or '(the file has no columns)'}"
        )
    return frame.to_numpy()  # (n, d)


def read_labels_file(path: Path, column: str) -> np.ndarray:
    """One label per row from a CSV column: (n,) names, or (n, k) 0/1 when any cell holds 'a|b'."""
    import polars as pl

    try:
        # every column as text (labels are names); infer_schema_length=0 says so on polars 1.0 too
        frame = pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first_line = str(exc).splitlines()[0]
        raise EvalError(
            f"could not read {path} as CSV ({first_line}); it must be UTF-8 CSV with a header row"
        ) from exc
    if column not in frame.columns:
        several = "," in column and all(c.strip() in frame.columns for c in column.split(",") if c.strip())
        raise EvalError(
            f"{path} has no column '{column}' (columns: {', '.join(frame.columns)}); "
            "name the label column with --label-column",
            hint="several columns are one multi-dimensional continuous Y: add --y-kind continuous"
            if several
            else None,
        )
    cells = frame[column]
    empty = np.flatnonzero(
        cells.is_null().to_numpy() | (cells.str.strip_chars() == "").fill_null(True).to_numpy()
    )
    if empty.size:
        raise EvalError(
            f"{path} has no '{column}' label in rows {', '.join(map(str, empty[:5]))}"
            f"{' …' if empty.size > 5 else ''} ({empty.size} of {len(cells)} data rows, counted from 0); "
            "drop those rows from both files"
        )
    if not cells.str.contains("|", literal=True).any():
        return cells.to_numpy()
    names = cells.str.split("|")  # multi-hot: several labels per sample
    vocabulary = sorted(name for name in names.explode().unique().to_list() if name)  # "a|" is "a"
    multi_hot = np.zeros((len(cells), len(vocabulary)), np.uint8)  # (n, k)
    column_of = {name: index for index, name in enumerate(vocabulary)}
    for row, row_names in enumerate(names.to_list()):
        multi_hot[row, [column_of[name] for name in row_names if name]] = 1
    return multi_hot


def read_and_measure(
    features_path: Path,
    labels_path: Path,
    *,
    label_column: str = "scene",
    device: str = "cpu",
    y_kind: str | None = None,
) -> DcorrResult:
    """dcorr² of the features in one file against the labels in another, rows in the same order."""
    features = read_features_file(features_path)
    labels = (
        read_continuous_labels(labels_path, label_column)
        if y_kind == "continuous"
        else read_labels_file(labels_path, label_column)
    )
    if features.shape[0] != labels.shape[0]:
        raise EvalError(
            f"{features_path} has {features.shape[0]} rows but {labels_path} has {labels.shape[0]} labels; "
            "both files must list the same samples in the same order"
        )
    return distance_correlation_stats(features, labels, device=device, y_kind=y_kind)


def read_continuous_labels(path: Path, columns: str) -> np.ndarray:
    """Real-valued labels from one CSV column, or several (``a,b,c``: one dimension each)."""
    import polars as pl

    try:
        frame = pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise EvalError(f"could not read {path} as CSV ({str(exc).splitlines()[0]})") from exc
    names = [c.strip() for c in columns.split(",") if c.strip()]
    if not names:
        raise EvalError(f"--label-column {columns!r} names no column", hint="e.g. --label-column depth,tilt")
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise EvalError(
            f"{path} has no column(s) {', '.join(missing)} (columns: {', '.join(frame.columns)}); "
            "name them with --label-column a,b"
        )
    out = np.empty((frame.height, len(names)))
    for k, name in enumerate(names):
        numbers = frame[name].str.strip_chars().cast(pl.Float64, strict=False)
        bad = np.flatnonzero(numbers.is_null().to_numpy() | ~np.isfinite(numbers.fill_null(0.0).to_numpy()))
        if bad.size:
            raise EvalError(
                f"{path}, column '{name}': row {bad[0]} (counted from 0) holds {frame[name][int(bad[0])]!r}, "
                f"not a finite number ({bad.size} such rows); continuous labels are numbers"
            )
        out[:, k] = numbers.to_numpy()
    return out[:, 0] if len(names) == 1 else out


# --- the statistics from the sums ---------------------------------------------------------


@dataclass(frozen=True)
class _PointSums:
    """What the tiles yield about the distance matrix a of one point set."""

    row_sums: np.ndarray  # (n,) a_i = Σ_j a_ij
    sum_squares: float  # Σ_ij a_ij²

    def self_sums(self) -> _DistanceSums:
        total = self.row_sums.sum()
        return _DistanceSums(
            cross=self.sum_squares, row_dot=float(self.row_sums @ self.row_sums), totals=total * total
        )


def _dcov2(sums: _DistanceSums, n: int, *, unbiased: bool) -> float:
    """dcov² from its sums; the U-statistic is Székely & Rizzo (2014), eq. 3.4 expanded.

    A result below 1e-12 of its terms is rounding noise and becomes exactly 0. Example: labels
    that are all distinct have a U-variance of exactly 0, which float64 leaves as ±1e-7 of
    dcorr² (``dcor`` returns that noise). Real values are ≥ 1e-6 of the terms up to n = 10⁶.
    """
    if unbiased:
        terms = (sums.cross, 2 * sums.row_dot / (n - 2), sums.totals / ((n - 1) * (n - 2)))
        scale = n * (n - 3)
    else:
        terms = (sums.cross, 2 * sums.row_dot / n, sums.totals / n**2)
        scale = n**2
    value = terms[0] - terms[1] + terms[2]
    if abs(value) <= 1e-12 * sum(abs(term) for term in terms):
        return 0.0
    return value / scale


def _dcorr2_both(xy: _DistanceSums, xx: _DistanceSums, yy: _DistanceSums, n: int) -> tuple[float, float]:
    """(V, U) dcorr²; a zero denominator (constant features or labels) gives 0, as in dcor."""
    stats = []
    for unbiased in (False, True):
        # abs(): the U-statistic variances can dip below 0 at tiny n; dcor takes |var_x·var_y| too
        denominator = math.sqrt(abs(_dcov2(xx, n, unbiased=unbiased) * _dcov2(yy, n, unbiased=unbiased)))
        stats.append(float(_dcov2(xy, n, unbiased=unbiased) / denominator) if denominator > 0 else 0.0)
    return stats[0], stats[1]


def _dcorr_one_hot(
    ops: _NumpyOps | _TorchOps, sorted_points: Any, sorted_codes: np.ndarray
) -> tuple[float, float]:
    """dcorr² for class ids; the rows of points and codes are sorted by class."""
    n = sorted_codes.size
    class_sizes = np.bincount(sorted_codes).astype(np.float64)  # (k,)
    class_starts = np.concatenate([[0], np.cumsum(class_sizes).astype(np.int64)])  # (k+1,)

    feature_sums, within_class = _tile_sums_one_hot(ops, sorted_points, sorted_codes, class_starts)
    total_a = feature_sums.row_sums.sum()
    sum_sq_sizes = float(class_sizes @ class_sizes)

    # b_ij = √2·[s_i ≠ s_j]: its row sums, total and Σ b² follow from the class sizes alone.
    row_sums_b = math.sqrt(2) * (n - class_sizes[sorted_codes])  # (n,), sorted order like a's
    total_b = math.sqrt(2) * (n * n - sum_sq_sizes)
    xy = _DistanceSums(
        cross=math.sqrt(2) * (total_a - within_class),
        row_dot=float(feature_sums.row_sums @ row_sums_b),
        totals=total_a * total_b,
    )
    label_sums = _PointSums(row_sums=row_sums_b, sum_squares=2 * (n * n - sum_sq_sizes))
    return _dcorr2_both(xy, feature_sums.self_sums(), label_sums.self_sums(), n)


def _dcorr_multi_hot(
    ops: _NumpyOps | _TorchOps, unit_points: Any, multi_hot: np.ndarray
) -> tuple[float, float]:
    return _dcorr_distances(ops, unit_points, ops.from_numpy(multi_hot))  # 0/1: label distances exact


def _dcorr_distances(ops: _NumpyOps | _TorchOps, unit_points: Any, unit_labels: Any) -> tuple[float, float]:
    """Multi-hot or real-valued labels: both distance matrices Euclidean, tile by tile."""
    n = unit_points.shape[0]
    feature_sums, label_sums, cross = _tile_sums_multi_hot(ops, unit_points, unit_labels)
    a, b = feature_sums.row_sums, label_sums.row_sums
    xy = _DistanceSums(cross=cross, row_dot=float(a @ b), totals=a.sum() * b.sum())
    return _dcorr2_both(xy, feature_sums.self_sums(), label_sums.self_sums(), n)


# --- the tile loops (shared by both backends) ---------------------------------------------


def _upper_tiles(n: int, tile: int):
    """(rows, cols, weight) for the tiles on and above the diagonal; off-diagonal ones count twice."""
    for col_start in range(0, n, tile):
        cols = slice(col_start, min(col_start + tile, n))
        for row_start in range(0, col_start + 1, tile):
            rows = slice(row_start, min(row_start + tile, n))
            yield rows, cols, (1 if row_start == col_start else 2)


class _Accumulator:
    """Row sums and Σ a² of one distance matrix, accumulated tile by tile in float64."""

    def __init__(self, ops: _NumpyOps | _TorchOps, n: int) -> None:
        self.row_sums = ops.zeros64(n)  # (n,) on the backend's device
        self.sum_squares = 0.0  # stays a device scalar on torch: no sync per tile

    def add(
        self,
        ops: _NumpyOps | _TorchOps,
        tile: Any,
        tile_sum_squares: Any,
        rows: slice,
        cols: slice,
        weight: int,
    ) -> Any:
        """Add one tile (and its mirror when off the diagonal); return the tile's float64 row sums."""
        tile_row_sums = ops.sum64(tile, axis=1)  # (rows,)
        self.row_sums[rows] += tile_row_sums
        if weight == 2:  # the mirrored tile below the diagonal: its rows are our columns
            self.row_sums[cols] += ops.sum64(tile, axis=0)
        self.sum_squares = self.sum_squares + weight * tile_sum_squares
        return tile_row_sums

    def result(self, ops: _NumpyOps | _TorchOps) -> _PointSums:
        return _PointSums(row_sums=ops.to_numpy(self.row_sums), sum_squares=float(self.sum_squares))


def _tile_sums_one_hot(
    ops: _NumpyOps | _TorchOps, sorted_points: Any, sorted_codes: np.ndarray, class_starts: np.ndarray
) -> tuple[_PointSums, float]:
    """Sums of a, and Σ a_ij over same-class pairs, for points sorted by class."""
    n = sorted_codes.size
    squared_norms = ops.squared_norms(sorted_points)  # (n,)
    features = _Accumulator(ops, n)
    within_class = 0.0
    for rows, cols, weight in _upper_tiles(n, ops.tile):
        distances, sum_squares = ops.distance_tile(sorted_points, squared_norms, rows, cols)  # (rows, cols)
        tile_row_sums = features.add(ops, distances, sum_squares, rows, cols, weight)
        # the classes present in both the row range and the column range (codes are sorted)
        first_class = max(sorted_codes[rows.start], sorted_codes[cols.start])
        last_class = min(sorted_codes[rows.stop - 1], sorted_codes[cols.stop - 1])
        for code in range(first_class, last_class + 1):
            start, stop = class_starts[code], class_starts[code + 1]
            r0, r1 = max(start, rows.start) - rows.start, min(stop, rows.stop) - rows.start
            c0, c1 = max(start, cols.start) - cols.start, min(stop, cols.stop) - cols.start
            if (r1 - r0, c1 - c0) == tuple(distances.shape):  # a large class covers the whole tile
                within_class = within_class + weight * tile_row_sums.sum()
            else:
                within_class = within_class + weight * ops.sum64(distances[r0:r1, c0:c1])
    return features.result(ops), float(within_class)


def _tile_sums_multi_hot(
    ops: _NumpyOps | _TorchOps, points: Any, label_points: Any
) -> tuple[_PointSums, _PointSums, float]:
    """Sums of a and of b (label-vector distances), and Σ a_ij·b_ij."""
    n = points.shape[0]
    squared_norms = ops.squared_norms(points)  # (n,)
    label_squared_norms = ops.squared_norms(label_points)  # (n,) label counts, exact
    features, labels = _Accumulator(ops, n), _Accumulator(ops, n)
    cross = 0.0
    for rows, cols, weight in _upper_tiles(n, ops.tile):
        distances, sum_squares = ops.distance_tile(points, squared_norms, rows, cols)
        label_distances, label_sum_squares = ops.distance_tile(
            label_points, label_squared_norms, rows, cols, second=True
        )
        features.add(ops, distances, sum_squares, rows, cols, weight)
        labels.add(ops, label_distances, label_sum_squares, rows, cols, weight)
        # the a·b products round to float32 without bias and are summed in float64 (measured 1e-7 vs dcor)
        cross = cross + weight * ops.sum64(ops.multiply_(label_distances, distances))
    return features.result(ops), labels.result(ops), float(cross)


# --- backends: the handful of array operations the loops need ------------------------------


class _NumpyOps:
    """Tiles with numpy (OpenBLAS sgemm/dgemm); float64 sums."""

    name = "numpy"

    def __init__(self, tile: int, dtype: str) -> None:
        self.tile = tile
        self.dtype = np.dtype(dtype)
        # flat buffers, viewed as a contiguous (rows, cols) array per tile so the last, smaller
        # tiles still go straight to BLAS (a strided `out=` would make matmul copy)
        self._buffers = [np.empty(tile * tile, self.dtype), np.empty(0, self.dtype)]

    def exact_matmul(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def centred_unit_rms(self, points: np.ndarray, order: np.ndarray | None) -> np.ndarray | None:
        """(n, d) copy in the tile dtype, rows taken in ``order``, centred and scaled to unit RMS norm.

        None if all rows are equal. dcorr² is invariant to translation and scale, and this keeps
        float32 distances accurate.
        """
        if (points == points[:1]).all():
            return None
        n = points.shape[0]
        mean = points.mean(axis=0, dtype=np.float64)  # (d,)
        centred = np.empty(points.shape, self.dtype)
        sum_squares = 0.0
        for start in range(0, n, _PREP_ROWS):
            rows = slice(start, start + _PREP_ROWS) if order is None else order[start : start + _PREP_ROWS]
            chunk = points[rows].astype(np.float64) - mean  # (chunk, d)
            sum_squares += float(np.einsum("ij,ij->", chunk, chunk))
            centred[start : start + _PREP_ROWS] = chunk
        centred *= self.dtype.type(1 / math.sqrt(sum_squares / n))
        return centred

    def from_numpy(self, array: np.ndarray) -> np.ndarray:
        return array.astype(self.dtype)

    def squared_norms(self, points: np.ndarray) -> np.ndarray:
        """(n,) squared norms in the tile dtype, summed in float64."""
        return np.einsum("ij,ij->i", points, points, dtype=np.float64).astype(self.dtype)

    def zeros64(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def distance_tile(
        self, points: np.ndarray, squared_norms: np.ndarray, rows: slice, cols: slice, *, second: bool = False
    ) -> tuple[np.ndarray, float]:
        """(rows, cols) distances √(|p_i|² + |p_j|² − 2·p_i·p_j) in a reused buffer, and Σ of their
        squares."""
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        if self._buffers[second].size < self.tile * self.tile:
            self._buffers[second] = np.empty(self.tile * self.tile, self.dtype)
        out = self._buffers[second][: shape[0] * shape[1]].reshape(shape)
        np.matmul(points[rows], points[cols].T, out=out)
        out *= -2
        out += squared_norms[rows, None]
        out += squared_norms[None, cols]
        np.maximum(out, 0, out=out)  # rounding can push a tiny squared distance below zero
        if rows == cols:
            np.fill_diagonal(out, 0)  # exact zeros where rounding would leave ~1e-3·|p|
        sum_squares = out.sum(dtype=np.float64)  # Σ a²: numpy's sqrt is correctly rounded, so a is unbiased
        np.sqrt(out, out=out)
        return out, sum_squares

    def sum64(self, tile: np.ndarray, axis: int | None = None) -> np.ndarray:
        return tile.sum(axis=axis, dtype=np.float64)

    def multiply_(self, target: np.ndarray, other: np.ndarray) -> np.ndarray:
        return np.multiply(target, other, out=target)

    def to_numpy(self, array: np.ndarray) -> np.ndarray:
        return array


class _TorchOps:
    """Tiles with torch (MKL on CPU, cuBLAS on CUDA); float64 sums kept on the device."""

    def __init__(self, tile: int, dtype: str, device: str) -> None:
        import torch

        self._torch = torch
        self.tile = tile
        self.dtype = getattr(torch, dtype)
        self.device = torch.device(device)
        self.name = f"torch:{self.device}"
        self._buffers = [self._empty(tile * tile), self._empty(0)]

    def _empty(self, size: int) -> Any:
        return self._torch.empty(size, dtype=self.dtype, device=self.device)

    @contextlib.contextmanager
    def exact_matmul(self):
        """Force IEEE float32 matmuls on CUDA: TF32 (10-bit mantissa) would cost ~1e-3 in dcorr²."""
        if self.device.type != "cuda":
            yield
            return
        matmul_flags = self._torch.backends.cuda.matmul
        previous = matmul_flags.fp32_precision
        matmul_flags.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul_flags.fp32_precision = previous

    def centred_unit_rms(self, points: Any, order: np.ndarray | None) -> Any:
        """Same as :meth:`_NumpyOps.centred_unit_rms`, on the device."""
        torch = self._torch
        if not isinstance(points, torch.Tensor):
            points = torch.from_numpy(np.ascontiguousarray(points))
        if bool((points == points[:1]).all()):
            return None
        n = points.shape[0]
        mean = torch.zeros(points.shape[1], dtype=torch.float64, device=self.device)  # (d,)
        for start in range(0, n, _PREP_ROWS):
            mean += points[start : start + _PREP_ROWS].to(self.device, torch.float64).sum(dim=0)
        mean /= n
        centred = torch.empty(points.shape, dtype=self.dtype, device=self.device)
        sum_squares = torch.zeros((), dtype=torch.float64, device=self.device)
        for start in range(0, n, _PREP_ROWS):
            rows = slice(start, start + _PREP_ROWS)
            if order is not None:
                rows = torch.from_numpy(order[rows]).to(points.device)
            chunk = points[rows].to(self.device, torch.float64) - mean  # (chunk, d)
            sum_squares += (chunk * chunk).sum()
            centred[start : start + _PREP_ROWS] = chunk
        centred *= 1 / math.sqrt(float(sum_squares) / n)
        return centred

    def from_numpy(self, array: np.ndarray) -> Any:
        return self._torch.from_numpy(array).to(self.device, self.dtype)

    def squared_norms(self, points: Any) -> Any:
        """(n,) squared norms in the tile dtype, summed in float64."""
        torch = self._torch
        squared_norms = torch.empty(points.shape[0], dtype=torch.float64, device=self.device)
        for start in range(0, points.shape[0], _PREP_ROWS):
            chunk = points[start : start + _PREP_ROWS].double()
            squared_norms[start : start + _PREP_ROWS] = (chunk * chunk).sum(dim=1)
        return squared_norms.to(self.dtype)

    def zeros64(self, n: int) -> Any:
        return self._torch.zeros(n, dtype=self._torch.float64, device=self.device)

    def distance_tile(
        self, points: Any, squared_norms: Any, rows: slice, cols: slice, *, second: bool = False
    ) -> tuple[Any, Any]:
        """(rows, cols) distances √(|p_i|² + |p_j|² − 2·p_i·p_j) in a reused buffer, and Σ of their
        squares."""
        torch = self._torch
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        if self._buffers[second].numel() < self.tile * self.tile:
            self._buffers[second] = self._empty(self.tile * self.tile)
        out = self._buffers[second][: shape[0] * shape[1]].view(shape)
        torch.addmm(squared_norms[rows, None], points[rows], points[cols].T, alpha=-2, out=out)
        out += squared_norms[None, cols]
        out.clamp_(min=0)  # rounding can push a tiny squared distance below zero
        if rows == cols:
            out.fill_diagonal_(0)  # exact zeros where rounding would leave ~1e-3·|p|
        out.sqrt_()
        # Σ a² from the rooted values, not from the squares before: torch's CPU sqrt is not
        # correctly rounded (measured +1.4e-9 relative bias), and dcorr² only tolerates a bias
        # that every sum shares. vector_norm accumulates the float64 squares without a temporary.
        return out, torch.linalg.vector_norm(out, dtype=torch.float64) ** 2

    def sum64(self, tile: Any, axis: int | None = None) -> Any:
        if axis is None:
            return tile.sum(dtype=self._torch.float64)
        return tile.sum(dim=axis, dtype=self._torch.float64)

    def multiply_(self, target: Any, other: Any) -> Any:
        return target.mul_(other)

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.cpu().numpy()
