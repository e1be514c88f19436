"""The roles rule: comparative verdicts, their band, the flip warning, the bootstrap and tasks.json v2."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from hvuaudit.categories import CLIP_MODES
from hvuaudit.cli import cli
from hvuaudit.errors import InputError
from hvuaudit.ingest import ingest
from hvuaudit.nca import necessity_frames
from hvuaudit.roles import BootstrapSpec, recommend_roles, share_differences, write_tasks
from hvuaudit.store import open_store
from hvucontracts.tasks import READABLE_FORMATS, TASKS_FORMAT, TasksFileError, read_tasks

# docs/nca.md prints these intervals (difference, low, high) of scene − object, default seed
DOCUMENTED = {
    ("labelled", 0.2): (-0.246, -0.285, -0.204),
    ("all", 0.2): (-0.342, -0.38, -0.302),
    ("labelled", 0.0): (-0.004, -0.028, 0.021),
}

# ---------------------------------------------------------------- the real validation file


@pytest.fixture(scope="module")
def real_roles(real_store):
    with open_store(real_store) as con:
        return {mode: recommend_roles(con, clips=mode) for mode in CLIP_MODES}


@pytest.fixture(scope="module")
def real_frames(real_store):
    with open_store(real_store) as con:
        return necessity_frames(con, ("scene", "object"), CLIP_MODES)


def test_real_default_roles_in_both_clip_modes(real_roles):
    for mode, roles in real_roles.items():
        assert roles.threshold == 0.2 and roles.clips == mode
        assert roles.roles == {"scene": "adversarial", "object": "auxiliary"}
        assert roles.warnings == []
        for category in ("scene", "object"):
            band = roles.band(category)
            # the band must hold at 0.2 and at 1.0, the two thresholds the first version used
            assert band.holds_at(0.2) and band.holds_at(1.0), (mode, category, band)
    # docs/nca.md states these bands: among labelled clips from 1/23 up to 3.5; over all clips from 0
    # on, with no end
    assert real_roles["labelled"].band("scene").describe() == "[0.04348, 3.5)"
    assert real_roles["labelled"].band("scene").low == pytest.approx(1 / 23)
    assert real_roles["all"].band("scene").describe() == "[0, ∞)"


def test_real_intervals_at_the_default_seed_are_the_documented_ones(real_store, real_roles):
    """docs/nca.md prints these digits; the default seed must keep giving them."""

    def digits(roles, mode):
        (pair,) = roles.differences[mode]
        return tuple(round(pair[k], 3) for k in ("difference", "ci_low", "ci_high"))

    assert digits(real_roles["labelled"], "labelled") == DOCUMENTED[("labelled", 0.2)]
    assert digits(real_roles["all"], "all") == DOCUMENTED[("all", 0.2)]
    with open_store(real_store) as con:
        at_zero = recommend_roles(con, threshold=0.0)
    assert digits(at_zero, "labelled") == DOCUMENTED[("labelled", 0.0)]


def test_the_shares_of_every_resample_match_a_direct_count(real_frames):
    """The running-sum lookup against the plain sum over each resample's drawn actions."""
    from hvuaudit.roles import ShareBootstrap, _resample_counts

    spec = BootstrapSpec(resamples=200, seed=5)
    boot = ShareBootstrap(real_frames, spec)
    actions = sorted({a for f in real_frames.values() for a in f["action"]})
    weights = _resample_counts(len(actions), spec).astype(np.float64)
    grid = np.array([0.0, 0.02, 1 / 47, 0.2, 0.5, 1.0, 3.99, 4.0, 50.0])
    for (mode, category), frame in real_frames.items():
        ratio = dict(zip(frame["action"], frame["ratio"].fill_null(np.inf), strict=True))
        counted = np.array([a in ratio for a in actions], dtype=float)
        values = np.array([ratio.get(a, np.inf) for a in actions])
        necessary = (values[:, None] <= grid[None, :]) * counted[:, None]
        point, resampled = boot.shares[(mode, category)].at(grid)
        assert np.allclose(point, necessary.sum(0) / counted.sum())
        assert np.allclose(resampled, (weights @ necessary) / (weights @ counted)[:, None], atol=1e-6)


def test_real_band_is_exact_and_its_edges_are_real(real_frames, real_roles):
    """Counting the verdict without the percentile gives the percentile's answer at every ratio, and the
    verdict changes at the band's edges and nowhere inside."""
    from hvuaudit.roles import ShareBootstrap, verdicts

    boot = ShareBootstrap(real_frames, BootstrapSpec())
    for mode in CLIP_MODES:
        points = sorted({*boot.breakpoints(mode), 0.0, 0.2})
        by_count = verdicts(boot.separations(points, mode), ("scene", "object"))
        assert by_count == verdicts(boot.table(points, [mode]), ("scene", "object"))
        midway = [(a + b) / 2 for a, b in itertools.pairwise(points)]
        for category, verdict in (("object", "auxiliary"), ("scene", "adversarial")):
            band = real_roles[mode].band(category)
            # between two ratios nothing changes: look midway, and just outside each edge
            inside = [t for t in midway + points if band.holds_at(t)]
            assert len(inside) > 100
            got = verdicts(boot.table(inside, [mode]), ("scene", "object"))
            assert {v[category] for v in got.values()} == {verdict}
            outside = [t for t in (band.low - 1e-9, band.high) if t is not None and t >= 0]
            for t in outside:
                (there,) = verdicts(boot.table([t], [mode]), ("scene", "object")).values()
                assert there[category] != verdict, (mode, category, t)


@pytest.mark.parametrize("mode", CLIP_MODES)
def test_real_intervals_agree_with_scipy_bootstrap(real_frames, real_roles, mode):
    """scipy.stats.bootstrap, with its own resampling, separates the categories where the band says so."""
    scene, obj = real_frames[(mode, "scene")], real_frames[(mode, "object")]
    actions = sorted(set(obj["action"]) | set(scene["action"]))
    ratio = {
        c: dict(zip(f["action"], f["ratio"].fill_null(np.inf), strict=True))
        for c, f in (("scene", scene), ("object", obj))
    }
    ours = share_differences(real_frames, [0.05, 0.2, 0.5, 1.0, 2.0], BootstrapSpec())
    for row in ours.filter(ours["clips"] == mode).iter_rows(named=True):
        t = row["threshold"]
        cols = []
        for c in ("scene", "object"):
            counted = np.array([a in ratio[c] for a in actions], dtype=float)
            cols += [np.array([ratio[c].get(a, np.inf) <= t for a in actions], dtype=float), counted]

        def statistic(sn, sc, on, co, axis=-1):
            return sn.sum(axis) / sc.sum(axis) - on.sum(axis) / co.sum(axis)

        result = stats.bootstrap(
            cols, statistic, paired=True, vectorized=True, n_resamples=2000, method="percentile",
            random_state=np.random.default_rng(123),
        )  # fmt: skip
        assert result.confidence_interval.high < 0, (mode, t)  # scene clearly below object
        # two independent draws of 2,000: the interval ends agree to Monte Carlo error
        assert result.confidence_interval.low == pytest.approx(row["ci_low"], abs=0.01)
        assert result.confidence_interval.high == pytest.approx(row["ci_high"], abs=0.01)


def test_real_intervals_reproduce_for_a_seed(real_frames):
    grid = [0.0, 0.2, 1.0]
    first = share_differences(real_frames, grid, BootstrapSpec(seed=7))
    again = share_differences(real_frames, grid, BootstrapSpec(seed=7))
    other = share_differences(real_frames, grid, BootstrapSpec(seed=8))
    assert first.equals(again)  # the same seed, the same digits
    assert not first.equals(other)
    assert set(first["seed"]) == {7} and set(first["resamples"]) == {2000}  # each row says what drew it
    # the labelled-mode figure at t = 0: 59 vs 63 actions, an interval that straddles 0
    row = first.filter((first["clips"] == "labelled") & (first["threshold"] == 0.0)).row(0, named=True)
    assert row["difference"] == pytest.approx(59 / 724 - 63 / 739)
    assert row["ci_low"] < 0 < row["ci_high"]


def test_real_flip_warning_outside_the_band(real_store, tmp_path):
    runner = CliRunner()
    tasks = tmp_path / "tasks.json"
    result = runner.invoke(
        cli, ["nca", "roles", "--threshold", "0", "-o", str(tasks), "--db", str(real_store)]
    )
    assert result.exit_code == 0, result.output
    # labelled clips at t = 0: 59 vs 63 actions, no interval separates them
    assert (
        "warning: object: threshold 0 lies outside its band [0.04348, 3.5) (labelled clips), where it is "
        "auxiliary; the verdict changes at the band's edge: below 0.04348 it is undecided" in result.stderr
    )
    doc = json.loads(tasks.read_text())
    assert doc["format"] == TASKS_FORMAT and doc["roles"] == {"scene": "undecided", "object": "undecided"}
    assert any(w.startswith("object: threshold 0 lies outside") for w in doc["warnings"])
    band = doc["bands"]["labelled"]["object"]
    assert (band["verdict"], band["high"], band["anchor"]) == ("auxiliary", 3.5, 0.2)
    assert band["low"] == pytest.approx(1 / 23)
    assert doc["bands"]["all"]["object"] == {"verdict": "auxiliary", "low": 0.0, "high": None, "anchor": 0.2}
    assert set(doc["evidence"]) == set(doc["differences"]) == {"all", "labelled"}
    assert doc["evidence"]["labelled"]["scene"] == {
        "actions_necessary": 59, "actions": 724, "share": round(59 / 724, 6), "verdict": "undecided",
    }  # fmt: skip
    assert read_tasks(tasks).roles == {"scene": "undecided", "object": "undecided"}
    # the same threshold counted over all clips is decided, and the warning says the modes disagree
    result = runner.invoke(
        cli,
        ["nca", "roles", "--threshold", "0", "--clips", "all", "--format", "json", "--db", str(real_store)],
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["roles"] == {"scene": "adversarial", "object": "auxiliary"}
    assert (
        "object: the clip modes disagree at threshold 0: auxiliary with all clips, undecided" in result.stderr
    )


def test_real_a_threshold_above_the_band_names_where_it_ends(real_store):
    """At t = 5 nearly every action has a necessary tag of both categories among labelled clips."""
    with open_store(real_store) as con:
        roles = recommend_roles(con, threshold=5.0)
    assert roles.roles == {"scene": "undecided", "object": "undecided"}
    assert any(
        "threshold 5 lies outside its band" in w and "from 3.5 on it is undecided" in w
        for w in roles.warnings
    )
    with open_store(real_store) as con:  # a threshold far out is an answer too, not an error
        assert recommend_roles(con, threshold=100.0, clips="all").roles["object"] == "auxiliary"


def test_real_old_flip_is_gone(real_store):
    """The first version made object adversarial at t = 0.2 (353/739 < 50%); the rule compares instead."""
    with open_store(real_store) as con:
        roles = recommend_roles(con, threshold=0.2, clips="all")
    assert roles.evidence["all"]["object"]["actions_necessary"] == 353
    assert roles.roles["object"] == "auxiliary" and roles.warnings == []


# ---------------------------------------------------------------- synthetic data with labels withheld


def _write_withheld(tmp_path, withhold: float, seed: int = 0):
    """Scenes are necessary (on 97% of an action's clips), objects are not (75%); every clip has both.

    Then the scene tags of a random ``withhold`` share of clips are dropped, as HVU's are missing.
    """
    rng = np.random.default_rng(seed)
    lines = ["Tags,youtube_id,time_start,time_end"]
    categories = ["Tag,Category"]
    n_actions, clips_per_action = 40, 60
    for a in range(n_actions):
        categories += [f"act{a},action", f"scn{a},scene", f"obj{a},object", f"alt{a},object"]
        for c in range(clips_per_action):
            scene = f"scn{a}" if rng.random() < 0.97 else f"scn{(a + 1) % n_actions}"
            obj = f"obj{a}" if rng.random() < 0.75 else f"alt{a}"
            tags = [f"act{a}", obj] + ([] if rng.random() < withhold else [scene])
            lines.append(f"{'|'.join(tags)},v{a}_{c},0,2")
    csv = tmp_path / f"HVU_Val_withheld{withhold}.csv"
    csv.write_text("\n".join(lines) + "\n")
    cats = tmp_path / "categories.csv"
    cats.write_text("\n".join(categories) + "\n")
    db = tmp_path / f"withheld{withhold}.duckdb"
    ingest([csv], cats, db=db)
    return db


def test_labelled_mode_recovers_the_roles_of_the_complete_data_and_all_does_not(tmp_path):
    with open_store(_write_withheld(tmp_path, 0.0)) as con:
        complete = recommend_roles(con)
    assert complete.roles == {"scene": "auxiliary", "object": "adversarial"}
    with open_store(_write_withheld(tmp_path, 0.6)) as con:
        labelled, every = recommend_roles(con, clips="labelled"), recommend_roles(con, clips="all")
    assert labelled.roles == complete.roles
    assert every.roles != complete.roles
    # the labelled run warns that counting all clips would disagree
    assert any("clip modes disagree" in w for w in labelled.warnings)


# ---------------------------------------------------------------- small stores, bad input, tasks.json


def test_three_actions_cannot_separate_categories_so_roles_are_undecided(tiny_store, tmp_path):
    runner = CliRunner()
    tasks = tmp_path / "tasks.json"
    result = runner.invoke(cli, ["nca", "roles", "-o", str(tasks), "--db", str(tiny_store)])
    assert result.exit_code == 0, result.output  # undecided is an answer, not an error
    assert "undecided" in result.stdout and "its band is empty" in result.stderr
    doc = json.loads(tasks.read_text())
    assert doc["roles"] == {"scene": "undecided", "object": "undecided"}
    assert doc["bands"]["labelled"]["scene"]["low"] is None


def test_bad_roles_input(tiny_store):
    runner = CliRunner()
    result = runner.invoke(cli, ["nca", "roles", "--clips", "some", "--db", str(tiny_store)])
    assert result.exit_code == 2 and "'all', 'labelled'" in result.output
    result = runner.invoke(cli, ["nca", "roles", "--category", "scene", "--db", str(tiny_store)])
    assert result.exit_code == 3 and "compares categories" in result.stderr
    with pytest.raises(InputError, match="--resamples"):
        BootstrapSpec(resamples=10)
    with pytest.raises(InputError, match="--confidence"):
        BootstrapSpec(confidence=1.0)


def test_a_category_without_any_labelled_clip_exits_3_naming_it(tmp_path):
    csv = tmp_path / "HVU_Val_noevent.csv"
    csv.write_text("Tags,youtube_id,time_start,time_end\nsurfing|beach|surfboard,a,0,2\nskiing|ski,b,0,2\n")
    from tests.conftest import FIXTURES

    db = tmp_path / "noevent.duckdb"
    ingest([csv], FIXTURES / "categories.csv", db=db)
    result = CliRunner().invoke(
        cli, ["nca", "roles", "--category", "scene", "--category", "event", "--db", str(db)]
    )
    assert result.exit_code == 3 and "no clip carries an event tag" in result.stderr
    # counting all clips, the labelled mode is only evidence: its absence is a warning, not an error
    result = CliRunner().invoke(
        cli, ["nca", "roles", "--category", "scene", "--category", "event", "--clips", "all", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "event: no clip is labelled for it, so only all clips were counted" in result.stderr
    # the annotation queue refuses it too in labelled mode, and lists its pairs over all clips
    result = CliRunner().invoke(cli, ["annotate", "queue", "--category", "event", "--db", str(db)])
    assert result.exit_code == 3 and "no clip carries an event tag" in result.stderr
    result = CliRunner().invoke(
        cli, ["annotate", "queue", "--category", "scene", "--format", "json", "--db", str(db)]
    )
    assert {row["clips"] for row in json.loads(result.stdout)} == {"labelled"}  # each row names its mode


def test_tasks_v1_is_still_read_and_v2_refuses_unknown_roles(tmp_path):
    v1 = tmp_path / "v1.json"
    v1.write_text(
        json.dumps({"format": READABLE_FORMATS[0], "roles": {"scene": "adversarial", "object": "auxiliary"}})
    )
    assert read_tasks(v1).roles == {"scene": "adversarial", "object": "auxiliary"}
    assert read_tasks(v1).warnings == ()
    # "undecided" exists from version 2 only
    v1.write_text(json.dumps({"format": READABLE_FORMATS[0], "roles": {"scene": "undecided"}}))
    with pytest.raises(TasksFileError, match="allows 'auxiliary' or 'adversarial'$"):
        read_tasks(v1)
    v2 = tmp_path / "v2.json"
    v2.write_text(json.dumps({"format": TASKS_FORMAT, "roles": {"scene": "unlearn"}, "warnings": []}))
    with pytest.raises(TasksFileError, match="roles.scene is 'unlearn'"):
        read_tasks(v2)
    v2.write_text(json.dumps({"format": "hvuaudit-tasks/9", "roles": {}}))
    with pytest.raises(TasksFileError, match="hvuaudit-tasks/9"):
        read_tasks(v2)


def test_written_tasks_round_trip(tmp_path):
    with open_store(_write_withheld(tmp_path, 0.0)) as con:
        roles = recommend_roles(con, bootstrap=BootstrapSpec(resamples=500, seed=3))
    path = tmp_path / "tasks.json"
    write_tasks(roles, path)
    doc = json.loads(path.read_text())
    assert doc["bootstrap"]["resamples"] == 500 and doc["bootstrap"]["seed"] == 3
    assert set(doc["bands"]) == {"labelled", "all"} and doc["rule"].startswith("at each threshold")
    assert read_tasks(path).roles == roles.roles


# ---------------------------------------------------------------- one set of defaults


def _commands(group, prefix=()):
    import click

    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        if not prefix and name in ("train", "eval", "report", "dcorr", "plot", "explain", "demo"):
            continue  # outside the audit core: they have no NCA options
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_one_default_threshold_and_clip_mode_everywhere():
    import inspect

    from hvuaudit import annotations, nca, roles
    from hvuaudit.categories import DEFAULT_CLIPS, DEFAULT_THRESHOLD

    seen = set()
    for path, command in _commands(cli):
        for param in command.params:
            if param.name == "threshold":
                assert float(param.default) == DEFAULT_THRESHOLD, path
                seen.add(path)
            if param.name == "clips" and path[0] != "synth":  # `synth annotations --clips N` counts clips
                assert param.default == DEFAULT_CLIPS, path
    assert {
        ("nca",),
        ("nca", "roles"),
        ("annotate", "queue"),
        ("annotate", "run"),
        ("annotate", "stats"),
    } <= seen
    from hvuaudit import cooccurrence

    for func in (
        nca.compute_nca, nca.nca_sweep, nca.nca_matrix, roles.recommend_roles,
        annotations.build_queue, annotations.annotation_stats, annotations.run_prompt,
        cooccurrence.action_cooccurrence,
    ):  # fmt: skip
        params = inspect.signature(func).parameters
        if "threshold" in params:
            assert params["threshold"].default == DEFAULT_THRESHOLD, func
        assert params["clips"].default == DEFAULT_CLIPS, func
    from hvuaudit.tui.app import HvuauditApp
    from hvudemo.settings import NCA_THRESHOLD

    assert NCA_THRESHOLD == DEFAULT_THRESHOLD  # the demo's NCA step

    assert HvuauditApp.threshold._default == DEFAULT_THRESHOLD  # the TUI's shared reactives
    assert HvuauditApp.clips._default == DEFAULT_CLIPS


def test_real_interval_ends_vary_across_seeds_as_documented(real_frames):
    """docs/nca.md: a seed moves an interval end by a standard deviation of about 0.001-0.0016 at
    2,000 resamples (checked here to stay below 0.0025), and 10,000 resamples bring it down by half."""

    def seed_spread(resamples: int) -> float:
        ends = [
            share_differences(real_frames, [0.2], BootstrapSpec(resamples=resamples, seed=seed))
            .select("ci_low", "ci_high")
            .to_numpy()
            .ravel()
            for seed in range(8)
        ]
        return float(np.std(ends, axis=0).max())

    at_2000, at_10000 = seed_spread(2000), seed_spread(10_000)
    assert at_2000 < 0.0025
    assert at_10000 < 0.7 * at_2000


def test_nca_roles_counts_without_loading_scipy_stats(tiny_store):
    """docs/nca.md: the roles count without p-values, so the command never pays scipy.stats' import."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom hvuaudit.store import open_store\nfrom hvuaudit.roles import recommend_roles\n"
        f"with open_store({str(tiny_store)!r}) as con:\n    recommend_roles(con)\n"
        "print('scipy.stats' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_an_interval_no_resample_could_draw_is_no_evidence():
    """A NaN interval (a resample drew none of a category's actions) must not count as 'above 0'."""
    import polars as pl

    from hvuaudit.roles import verdicts

    frame = pl.DataFrame(
        {"clips": ["all"], "threshold": [0.2], "category": ["scene"], "versus": ["object"],
         "difference": [0.5], "ci_low": [float("nan")], "ci_high": [float("nan")], "sign_test_p": [0.0],
         "confidence": [0.95]}
    )  # fmt: skip
    assert verdicts(frame, ("scene", "object")) == {
        ("all", 0.2): {"scene": "undecided", "object": "undecided"}
    }


def test_the_sign_test_is_the_exact_binomial_test():
    from hvuaudit.roles import sign_test_p

    for wins, losses in [(0, 0), (1, 0), (8, 0), (5, 3), (63, 59), (300, 250)]:
        expected = stats.binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
        assert sign_test_p(wins, losses) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n_actions", [1, 2, 5])
def test_a_few_actions_that_all_agree_are_no_evidence(tmp_path, n_actions):
    """Every action has its object and never its scene: the bootstrap interval collapses to [-1, -1], but
    with five or fewer actions the sign test cannot reject equal shares at 95% (p = 2 / 2**n >= 0.0625)."""
    lines = ["Tags,youtube_id,time_start,time_end"]
    cats = ["Tag,Category", "beach,scene", "ocean,scene"]
    for a in range(n_actions):
        cats += [f"act{a},action", f"obj{a},object"]
        lines += [f"act{a}|obj{a}|{'beach' if c % 2 else 'ocean'},v{a}_{c},0,2" for c in range(6)]
    (tmp_path / "HVU_Val_few.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "cats.csv").write_text("\n".join(cats) + "\n")
    db = tmp_path / "few.duckdb"
    ingest([tmp_path / "HVU_Val_few.csv"], tmp_path / "cats.csv", db=db)
    with open_store(db) as con:
        roles = recommend_roles(con, clips="all")
    (pair,) = roles.differences["all"]
    assert (pair["ci_low"], pair["ci_high"]) == (-1.0, -1.0)  # the bootstrap alone would decide
    assert roles.roles == {"scene": "undecided", "object": "undecided"}


def test_nca_sweep_over_both_modes_prints_the_intervals_nca_roles_uses(real_store, real_roles):
    result = CliRunner().invoke(
        cli,
        [
            "nca",
            "sweep",
            "--clips",
            "both",
            "--thresholds",
            "0.2",
            "--format",
            "json",
            "--db",
            str(real_store),
        ],
    )
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout)["differences"]:
        (pair,) = real_roles["labelled"].differences[row["clips"]]
        assert (round(row["ci_low"], 6), round(row["ci_high"], 6)) == (pair["ci_low"], pair["ci_high"])


def test_tasks_json_never_replaces_a_file_that_is_not_one(tiny_store, tmp_path):
    from click.testing import CliRunner

    from hvuaudit.cli import cli

    def write(path):
        return CliRunner().invoke(
            cli, ["nca", "roles", "--resamples", "200", "-o", str(path), "--db", str(tiny_store)]
        )

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    refused = write(notes)
    assert (
        refused.exit_code == 5 and "is not a tasks file" in refused.output and notes.read_text() == "my notes"
    )
    first = write(tmp_path / "tasks.json")
    assert first.exit_code == 0, first.output
    assert write(tmp_path / "tasks.json").exit_code == 0  # an earlier tasks.json is replaced
    onto_store = write(tiny_store)
    assert onto_store.exit_code == 5 and tiny_store.stat().st_size > 10_000
