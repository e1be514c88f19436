"""Exact blockwise dcorr² (hvueval/dcorr.py) against dcor, its invariances, and `hvuaudit dcorr`."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvueval.dcorr import DcorrResult, distance_correlation_sqr, distance_correlation_stats
from hvueval.errors import EvalError

dcor = pytest.importorskip("dcor")

# V-statistic: a relative 1e-6 (measured ~1e-8). The U-statistic of independent data is
# sampling noise around 0 (~1e-4), so there the float32 tiles are held to an absolute 1e-8.
V_RTOL = 1e-6
U_RTOL, U_ATOL = 1e-6, 1e-8


@pytest.fixture
def reference(monkeypatch):
    """dcor's (V, U) dcorr², through its scipy distance path.

    dcor 0.7 with array-api-compat >= 1.16 does not recognise numpy arrays and falls back to an
    n×n×d float64 broadcast (4 GB at n = 1000, d = 512); this restores its scipy path.
    """
    monkeypatch.setattr(
        dcor.distances,
        "_can_be_numpy_double",
        lambda x: isinstance(x, np.ndarray) and x.dtype == np.float64,
    )

    def reference_stats(features: np.ndarray, label_matrix: np.ndarray) -> tuple[float, float]:
        features, label_matrix = features.astype(np.float64), label_matrix.astype(np.float64)
        return (
            float(dcor.distance_correlation_sqr(features, label_matrix)),
            float(dcor.u_distance_correlation_sqr(features, label_matrix)),
        )

    return reference_stats


def _assert_matches(result: DcorrResult, expected: tuple[float, float]) -> None:
    np.testing.assert_allclose(result.dcorr2, expected[0], rtol=V_RTOL)
    np.testing.assert_allclose(result.dcorr2_u, expected[1], rtol=U_RTOL, atol=U_ATOL)


def _scene_features(rng, n: int, d: int, k: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) features that carry `strength` of a scene signal, and (n,) scene ids (imbalanced)."""
    scenes = rng.choice(k, size=n, p=np.arange(k, 0, -1) / (k * (k + 1) / 2))
    centres = rng.standard_normal((k, d))
    return rng.standard_normal((n, d)) + strength * centres[scenes], scenes


# The last tile is a remainder (n % tile != 0). n >= 2048 runs the float32 tiles, smaller n float64.
@pytest.mark.parametrize(
    ("n", "d", "k", "tile"),
    [(7, 3, 2, 4), (130, 16, 5, 64), (1000, 64, 30, 300), (2100, 512, 248, 1024), (2501, 8, 3, 1000)],
)
@pytest.mark.parametrize("strength", [0.0, 0.7])
def test_one_hot_matches_dcor(reference, n, d, k, tile, strength):
    rng = np.random.default_rng(n + d)
    features, scenes = _scene_features(rng, n, d, k, strength)
    result = distance_correlation_stats(features, scenes, tile=tile)
    _assert_matches(result, reference(features, np.eye(k)[scenes]))
    assert (result.n, result.tile_dtype) == (n, "float32" if n >= 2048 else "float64")


@pytest.mark.parametrize(("n", "tile"), [(9, 4), (600, 256), (2050, 1000)])
@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_multi_hot_matches_dcor(reference, n, tile, strength):
    rng = np.random.default_rng(n)
    multi_hot = (rng.random((n, 12)) < 0.25).astype(np.int64)  # some rows empty, some with several
    features = rng.standard_normal((n, 32)) + strength * multi_hot @ rng.standard_normal((12, 32))
    _assert_matches(
        distance_correlation_stats(features, multi_hot, tile=tile), reference(features, multi_hot)
    )


def test_torch_backend_matches_dcor(reference):
    pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for n in (700, 2100):  # float64 and float32 tiles
        features, scenes = _scene_features(rng, n, 64, 9, 0.5)
        result = distance_correlation_stats(features, scenes, tile=256, backend="torch")
        assert result.backend == "torch:cpu"
        _assert_matches(result, reference(features, np.eye(9)[scenes]))
        multi_hot = (rng.random((n, 5)) < 0.4).astype(np.float32)
        _assert_matches(
            distance_correlation_stats(features, multi_hot, tile=256, backend="torch"),
            reference(features, multi_hot),
        )


def test_cuda_matches_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(4)
    features, scenes = _scene_features(rng, 3000, 128, 20, 0.3)
    on_gpu = distance_correlation_stats(torch.from_numpy(features).cuda(), scenes)
    on_cpu = distance_correlation_stats(features, scenes)
    assert on_gpu.backend.startswith("torch:cuda")
    np.testing.assert_allclose(on_gpu.dcorr2, on_cpu.dcorr2, rtol=V_RTOL)
    np.testing.assert_allclose(on_gpu.dcorr2_u, on_cpu.dcorr2_u, rtol=U_RTOL, atol=U_ATOL)


def test_label_encodings_agree():
    rng = np.random.default_rng(5)
    features, scenes = _scene_features(rng, 300, 16, 4, 0.5)
    names = np.array(["beach", "kitchen", "stadium", "forest"])[scenes]
    expected = distance_correlation_sqr(features, scenes)
    assert distance_correlation_sqr(features, names) == pytest.approx(expected, rel=1e-12)
    assert distance_correlation_sqr(features, names.tolist()) == pytest.approx(expected, rel=1e-12)
    # a 2-D one-hot array is recognised and takes the same closed-form path
    assert distance_correlation_sqr(features, np.eye(4)[scenes]) == pytest.approx(expected, rel=1e-12)


def test_thin_wrapper_returns_v_or_u():
    rng = np.random.default_rng(6)
    features, scenes = _scene_features(rng, 200, 8, 3, 0.5)
    stats = distance_correlation_stats(features, scenes)
    assert distance_correlation_sqr(features, scenes) == stats.dcorr2
    assert distance_correlation_sqr(features, scenes, unbiased=True) == stats.dcorr2_u


def test_invariant_to_scale_translation_rotation_and_row_order():
    rng = np.random.default_rng(7)
    features, scenes = _scene_features(rng, 500, 24, 6, 0.4)
    base = distance_correlation_stats(features, scenes)
    rotation, _ = np.linalg.qr(rng.standard_normal((24, 24)))
    order = rng.permutation(500)
    for moved, labels in [
        (features * 1e4, scenes),
        (features * 1e-4 + 1e3, scenes),
        (features @ rotation, scenes),
        (features[order], scenes[order]),
    ]:
        result = distance_correlation_stats(moved, labels)
        assert result.dcorr2 == pytest.approx(base.dcorr2, rel=1e-6)
        assert result.dcorr2_u == pytest.approx(base.dcorr2_u, rel=1e-5, abs=1e-8)


def test_independent_labels_give_about_zero():
    rng = np.random.default_rng(8)
    features = rng.standard_normal((3000, 16))
    scenes = rng.integers(0, 5, 3000)
    result = distance_correlation_stats(features, scenes)
    assert abs(result.dcorr2_u) < 2e-3  # unbiased: centred on 0
    assert 0 <= result.dcorr2 < 0.02  # V-statistic: positive bias of order 1/n


def test_labels_that_are_a_function_of_the_features_score_high():
    rng = np.random.default_rng(9)
    features = rng.standard_normal((2000, 16))
    assert distance_correlation_sqr(features, np.argmax(features[:, :4], axis=1)) > 0.15
    scenes = rng.integers(0, 6, 2000)
    clustered = 10 * np.eye(6)[scenes] @ rng.standard_normal((6, 32)) + rng.standard_normal((2000, 32))
    assert distance_correlation_sqr(clustered, scenes) > 0.95


def test_degenerate_inputs_give_the_defined_value():
    rng = np.random.default_rng(10)
    features = rng.standard_normal((50, 4))
    scenes = rng.integers(0, 3, 50)
    constant_features = distance_correlation_stats(np.full((50, 4), 0.1), scenes)
    assert (constant_features.dcorr2, constant_features.dcorr2_u) == (0.0, 0.0)
    single_class = distance_correlation_stats(features, np.zeros(50, int))
    assert (single_class.dcorr2, single_class.dcorr2_u) == (0.0, 0.0)
    # all labels distinct: b is constant off the diagonal, so its U-variance is exactly 0
    assert distance_correlation_stats(features, np.arange(50)).dcorr2_u == 0.0
    assert distance_correlation_sqr(np.arange(4.0), [0, 0, 1, 1]) > 0  # 1-D features are (n, 1)


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (np.zeros((3, 2)), [0, 1, 0], "at least 4 samples"),
        (np.zeros((5, 2)), [0, 1, 0, 1], "features have 5 rows but labels have 4"),
        (
            np.array([[0.0], [np.nan], [1.0], [2.0], [np.inf]]),
            [0, 1, 0, 1, 0],
            "NaN or infinite values in 2 of 5 rows",
        ),
        (np.zeros((4, 2)), [[0, 2], [1, 0], [1, 0], [0, 1]], "0/1 multi-hot"),
        (np.zeros((4, 2)), ["a", None, "b", "a"], "labels are missing in 1 of 4 rows"),
        (np.zeros((4, 2, 2)), [0, 1, 0, 1], r"\(n, d\) array"),
    ],
)
def test_bad_input_is_a_clear_error(features, labels, message):
    with pytest.raises(EvalError, match=message):
        distance_correlation_stats(features, np.array(labels, dtype=object if None in labels else None))


# --- `hvuaudit dcorr` ---------------------------------------------------------------------


@pytest.fixture
def feature_files(tmp_path):
    rng = np.random.default_rng(11)
    features, scenes = _scene_features(rng, 120, 8, 4, 0.8)
    names = np.array(["beach", "kitchen", "stadium", "forest"])[scenes]
    np.save(tmp_path / "features.npy", features.astype(np.float32))
    pl.DataFrame({"clip_id": [f"c{i}" for i in range(120)], "scene": names}).write_csv(
        tmp_path / "labels.csv"
    )
    expected = distance_correlation_stats(features.astype(np.float32), names)
    return tmp_path, features, names, expected


def _run(*args: str):
    return CliRunner().invoke(cli, ["dcorr", *args])


def test_cli_json(feature_files):
    folder, _, _, expected = feature_files
    result = _run(
        "--features", str(folder / "features.npy"), "--labels", str(folder / "labels.csv"), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"n", "dcorr2", "dcorr2_u", "seconds", "y_kind", "label_column"}
    assert (payload["y_kind"], payload["label_column"]) == ("categorical", "scene")
    assert payload["n"] == 120
    assert payload["dcorr2"] == pytest.approx(expected.dcorr2, rel=1e-12)
    assert payload["dcorr2_u"] == pytest.approx(expected.dcorr2_u, rel=1e-12)


def test_cli_table_reads_parquet_and_other_column(feature_files):
    folder, features, names, expected = feature_files
    pl.DataFrame({"feature": features.astype(np.float32)}).write_parquet(folder / "features.parquet")
    pl.DataFrame({"place": names}).write_csv(folder / "places.csv")
    result = _run(
        "--features",
        str(folder / "features.parquet"),
        "--labels",
        str(folder / "places.csv"),
        "--label-column",
        "place",
    )
    assert result.exit_code == 0, result.output
    header, values = result.stdout.strip().splitlines()
    assert header.split() == ["n", "dcorr²", "dcorr²_u", "seconds"]
    n, dcorr2, dcorr2_u, _ = values.split()
    assert (int(n), float(dcorr2), float(dcorr2_u)) == (
        120,
        round(expected.dcorr2, 6),
        round(expected.dcorr2_u, 6),
    )
    # one numeric column per dimension reads the same as one array column
    pl.DataFrame(features.astype(np.float32), schema=[f"f{i}" for i in range(8)]).write_parquet(
        folder / "wide.parquet"
    )
    wide = _run(
        "--features",
        str(folder / "wide.parquet"),
        "--labels",
        str(folder / "places.csv"),
        "--label-column",
        "place",
    )
    assert wide.exit_code == 0, wide.output
    assert wide.stdout.split()[:7] == result.stdout.split()[:7]  # all but the seconds


def test_cli_multi_hot_labels(tmp_path, reference):
    rng = np.random.default_rng(12)
    multi_hot = rng.random((80, 3)) < 0.5
    features = rng.standard_normal((80, 4)) + multi_hot @ rng.standard_normal((3, 4))
    np.save(tmp_path / "f.npy", features)
    # rows without any scene are not allowed in the file; give them one so every row has a label
    multi_hot[~multi_hot.any(axis=1), 0] = True
    cells = ["|".join(name for name, on in zip(["a", "b", "c"], row, strict=True) if on) for row in multi_hot]
    pl.DataFrame({"scene": cells}).write_csv(tmp_path / "l.csv")
    result = _run(
        "--features", str(tmp_path / "f.npy"), "--labels", str(tmp_path / "l.csv"), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    expected_v, _ = reference(features, multi_hot)
    assert json.loads(result.stdout)["dcorr2"] == pytest.approx(expected_v, rel=V_RTOL)


def test_cli_lengths_differ(feature_files):
    folder, features, _, _ = feature_files
    np.save(folder / "short.npy", features[:100])
    result = _run("--features", str(folder / "short.npy"), "--labels", str(folder / "labels.csv"))
    assert result.exit_code == 3
    assert "short.npy has 100 rows but" in result.stderr and "labels.csv has 120" in result.stderr
    assert result.stdout == ""


def test_cli_nan_in_features(feature_files):
    folder, features, _, _ = feature_files
    broken = features.copy()
    broken[[5, 17], 2] = np.nan
    np.save(folder / "nan.npy", broken)
    result = _run("--features", str(folder / "nan.npy"), "--labels", str(folder / "labels.csv"))
    assert result.exit_code == 3
    assert "nan.npy" in result.stderr and "2 of 120 rows (first rows: 5, 17)" in result.stderr


def test_cli_missing_label_column(feature_files):
    folder, _, _, _ = feature_files
    result = _run(
        "--features",
        str(folder / "features.npy"),
        "--labels",
        str(folder / "labels.csv"),
        "--label-column",
        "place",
    )
    assert result.exit_code == 3
    assert "labels.csv has no column 'place'" in result.stderr
    assert "clip_id, scene" in result.stderr and "--label-column" in result.stderr


def test_cli_empty_label_cells(feature_files):
    folder, _, names, _ = feature_files
    cells = names.astype(object)
    cells[[3, 9]] = None
    pl.DataFrame({"scene": cells.tolist()}, schema={"scene": pl.String}).write_csv(folder / "holes.csv")
    result = _run("--features", str(folder / "features.npy"), "--labels", str(folder / "holes.csv"))
    assert result.exit_code == 3
    assert "holes.csv" in result.stderr and "rows 3, 9" in result.stderr


@pytest.mark.parametrize("which", ["features", "labels"])
def test_cli_unreadable_files(feature_files, which):
    folder, _, _, _ = feature_files
    (folder / "garbage.npy").write_bytes(b"not an array")
    (folder / "garbage.csv").write_bytes(b"scene\nbeach\n\xff\xfekitchen\n")  # not UTF-8
    paths = {"features": folder / "features.npy", "labels": folder / "labels.csv"}
    paths[which] = folder / ("garbage.npy" if which == "features" else "garbage.csv")
    result = _run("--features", str(paths["features"]), "--labels", str(paths["labels"]))
    assert result.exit_code == 3
    assert f"garbage.{'npy' if which == 'features' else 'csv'}" in result.stderr
    assert result.stderr.startswith("error: could not read")


def test_cli_missing_file_and_unknown_suffix(feature_files):
    folder, _, _, _ = feature_files
    missing = _run("--features", str(folder / "nope.npy"), "--labels", str(folder / "labels.csv"))
    assert missing.exit_code == 2 and "nope.npy" in missing.stderr and "does not exist" in missing.stderr
    (folder / "features.txt").write_text("1 2 3\n")
    suffix = _run("--features", str(folder / "features.txt"), "--labels", str(folder / "labels.csv"))
    assert suffix.exit_code == 3 and "features.txt" in suffix.stderr and ".npy or .parquet" in suffix.stderr


# --- continuous labels (--y-kind continuous) ----------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_continuous_labels_match_dcor_within_1e9(reference, k):
    """Real-valued Y uses Euclidean distances, exactly as dcor: n = 500, 1-D and 3-D."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 6))
    y = x[:, :k] * 0.7 + rng.normal(size=(500, k))
    labels = y[:, 0] if k == 1 else y
    result = distance_correlation_stats(x, labels, y_kind="continuous")
    v, u = float(dcor.distance_correlation_sqr(x, y)), float(dcor.u_distance_correlation_sqr(x, y))
    assert abs(result.dcorr2 - v) < 1e-9 and abs(result.dcorr2_u - u) < 1e-9
    assert distance_correlation_sqr(x, labels, y_kind="continuous", unbiased=True) == result.dcorr2_u


def test_real_valued_labels_are_never_guessed():
    """Before, a 1-D float Y was read as class ids: 0.579 where dcor gives 0.140. Now it must be named."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 4))
    y = x[:, 0] + rng.normal(size=200)
    with pytest.raises(EvalError, match="may be continuous; say which") as err:
        distance_correlation_stats(x, y)
    assert "--y-kind continuous" in err.value.hint
    with pytest.raises(EvalError, match="may be continuous"):
        distance_correlation_stats(x, np.array([f"{v:.3f}" for v in y], dtype=object))  # numbers as text
    with pytest.raises(EvalError, match="may be continuous"):
        distance_correlation_stats(x, np.c_[y, y])  # 2-D real values too
    with pytest.raises(EvalError, match="2-D categorical labels must be 0/1 multi-hot.*y_kind='continuous'"):
        distance_correlation_stats(x, np.c_[np.round(y), np.round(y)])
    # whole numbers stay class ids; naming the kind is always allowed
    assert (
        distance_correlation_stats(x, np.round(y)).dcorr2
        == distance_correlation_stats(x, np.round(y).astype(int)).dcorr2
    )
    categorical = distance_correlation_stats(x, y, y_kind="categorical").dcorr2
    assert categorical != pytest.approx(distance_correlation_stats(x, y, y_kind="continuous").dcorr2)


def test_cli_continuous_labels(tmp_path, reference):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 5))
    y = np.c_[x[:, 0] + rng.normal(size=300), rng.normal(size=300)]
    np.save(tmp_path / "f.npy", x)
    pl.DataFrame({"depth": y[:, 0], "tilt": y[:, 1]}).write_csv(tmp_path / "y.csv")
    base = ["--features", str(tmp_path / "f.npy"), "--labels", str(tmp_path / "y.csv"), "--format", "json"]
    refused = _run(*base, "--label-column", "depth")
    assert refused.exit_code == 3 and "--y-kind continuous" in refused.stderr
    one = json.loads(_run(*base, "--label-column", "depth", "--y-kind", "continuous").stdout)
    assert one["dcorr2"] == pytest.approx(float(dcor.distance_correlation_sqr(x, y[:, 0])), abs=1e-9)
    two = json.loads(_run(*base, "--label-column", "depth,tilt", "--y-kind", "continuous").stdout)
    assert two["dcorr2"] == pytest.approx(float(dcor.distance_correlation_sqr(x, y)), abs=1e-9)
    (tmp_path / "bad.csv").write_text("depth\n1.5\nabc\n" + "\n".join(["2.0"] * 298) + "\n")
    bad = _run(
        "--features",
        str(tmp_path / "f.npy"),
        "--labels",
        str(tmp_path / "bad.csv"),
        "--label-column",
        "depth",
        "--y-kind",
        "continuous",
    )
    assert bad.exit_code == 3 and "row 1 (counted from 0) holds 'abc'" in bad.stderr


def test_continuous_edge_cases_are_refused_or_defined(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 3))
    with pytest.raises(EvalError, match=r"k ≥ 1"):
        distance_correlation_stats(x, np.zeros((300, 0)), y_kind="continuous")
    # many distinct whole-number floats (ages, counts) are measurements, not 200 classes
    ages = np.round(rng.uniform(0, 400, size=300))
    with pytest.raises(EvalError, match="many distinct values"):
        distance_correlation_stats(x, ages.astype(float))
    assert distance_correlation_stats(x, ages.astype(int)).n == 300  # integers stay class ids
    # text: '3' is a class id, '1e3' a number
    assert distance_correlation_stats(x, np.array([str(i % 3) for i in range(300)], dtype=object)).n == 300
    assert distance_correlation_stats(x, np.full(300, 2.5), y_kind="continuous").dcorr2 == 0.0  # constant Y
    np.save(tmp_path / "f.npy", x)
    pl.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)}).write_csv(tmp_path / "y.csv")
    base = ["--features", str(tmp_path / "f.npy"), "--labels", str(tmp_path / "y.csv")]
    empty = _run(*base, "--label-column", ",", "--y-kind", "continuous")
    assert empty.exit_code == 3 and "names no column" in empty.stderr
    several = _run(*base, "--label-column", "a,b")
    assert several.exit_code == 3 and "add --y-kind continuous" in several.stderr


def test_tensor_labels_that_need_no_grad_or_a_wider_type_are_read():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.normal(size=(64, 3))
    y = torch.tensor(rng.normal(size=64), requires_grad=True)
    expected = distance_correlation_stats(x, y.detach().numpy(), y_kind="continuous").dcorr2
    assert distance_correlation_stats(x, y, y_kind="continuous").dcorr2 == expected
    assert distance_correlation_stats(x, y.detach().to(torch.bfloat16), y_kind="continuous").n == 64
