"""Every bundled .sql file runs; the CLI prints exact outputs, exit codes, and help with examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import duckdb
import pytest
from click.testing import CliRunner

from hvuaudit.cli import LAZY_COMMANDS, cli
from hvuaudit.store import bundled_queries, open_store, queries_dir, run_query, sql_parameters
from tests.conftest import FIXTURES

PARAMS = {
    "action": "surfing",
    "tag": "beach",
    "category": "object",
    "threshold": "0.5",
    "a": "si1",
    "b": "si2",
    "top_actions": 3,
    "top_tags": 4,
}


@pytest.mark.parametrize("path", sorted(queries_dir().glob("*.sql")), ids=lambda p: p.stem)
def test_every_bundled_query_runs_on_the_fixture_store(tiny_store, path):
    with open_store(tiny_store) as con:
        frame = run_query(con, path.stem, **{p: PARAMS[p] for p in sql_parameters(path.read_text())})
    assert frame.width > 0
    description = path.read_text().splitlines()[0]
    assert description.startswith("-- ") and len(description) > 10


def test_bundled_query_results(tiny_store):
    with open_store(tiny_store) as con:
        top = run_query(con, "top_scenes_of_action", action="surfing")
        assert top["scene"].to_list() == ["beach", "mountain", "ocean"] and top["n_both"].to_list() == [
            2,
            1,
            1,
        ]
        assert run_query(con, "actions_of_tag", tag="mountain")["action"].to_list() == ["skiing", "surfing"]
        clips = run_query(con, "clips_of_pair", action="surfing", tag="beach")
        assert clips["clip_id"].to_list() == ["vid_aaaaaa1_10.0_12.0", "vid_aaaaaa3_5.5_7.5"]
        assert clips["url"][1] == "https://www.youtube.com/watch?v=vid_aaaaaa3&t=5s"
        assert clips["tags"][0] == "surfing|beach|surfboard|wet|sport"
        assert run_query(con, "clips_without_scene")["clip_id"].to_list() == [
            "vid_aaaaaa4_30.0_32.0",
            "vid_bbbbbb3_3.0_5.0",
        ]
        necessary = run_query(con, "necessary_pairs", category="object", threshold=0)
        assert sorted(necessary["action"].to_list()) == ["skiing", "surfing"]


def test_queries_command_lists_every_file():
    result = CliRunner().invoke(cli, ["queries", "--format", "json"])
    assert result.exit_code == 0
    names = [row["name"] for row in json.loads(result.output)]
    assert names == [name for name, _, _ in bundled_queries()] and len(names) >= 6


def test_sql_json_is_an_array_of_row_objects(tiny_store):
    result = CliRunner().invoke(
        cli,
        [
            "sql",
            "top_scenes_of_action",
            "--param",
            "action=dancing",
            "--format",
            "json",
            "--db",
            str(tiny_store),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"scene": "stage", "n_both": 2, "n_action": 3, "p_scene_given_action": 0.6667, "lift": 4.0},
        {"scene": "beach", "n_both": 1, "n_action": 3, "p_scene_given_action": 0.3333, "lift": 1.0},
    ]


def test_sql_csv_and_parquet(tiny_store, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        cli, ["sql", "SELECT action, n_clips FROM (FROM actions) ORDER BY 1", "--db", str(tiny_store)]
    )
    assert result.exit_code != 0  # 'actions' is a query file, not a table: DuckDB error
    result = runner.invoke(
        cli,
        [
            "sql",
            "SELECT tag, n_clips FROM tag_counts WHERE category = 'action' ORDER BY tag",
            "--format",
            "csv",
            "--db",
            str(tiny_store),
        ],
    )
    assert result.exit_code == 0
    assert result.output == "tag,n_clips\ndancing,3\nskiing,4\nsurfing,5\n"
    out = tmp_path / "a.parquet"
    result = runner.invoke(
        cli, ["sql", "actions", "--format", "parquet", "-o", str(out), "--db", str(tiny_store)]
    )
    assert result.exit_code == 0 and out.stat().st_size > 0


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM clips",
        "DROP TABLE clips",
        "INSERT INTO tags VALUES (99, 'x', 'scene')",
        "COPY (SELECT 1) TO 'leak.csv'",
        "ATTACH 'other.duckdb'",
        "CREATE TABLE t AS SELECT 1",
    ],
)
def test_sql_is_read_only(tiny_store, statement, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["sql", statement, "--db", str(tiny_store)])
    assert result.exit_code == 4
    assert "error: DuckDB raised an error" in result.output
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "other.duckdb").exists()
    con = duckdb.connect(str(tiny_store), read_only=True)
    assert con.execute("SELECT count(*) FROM clips").fetchall() == [(12,)]
    assert con.execute("SELECT count(*) FROM tags").fetchall() == [(13,)]


def test_sql_missing_param_and_missing_store(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["sql", "top_scenes_of_action", "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2 and "--param action=VALUE" in result.output
    result = runner.invoke(cli, ["sql", "SELECT 1", "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 4 and "does not exist" in result.output and "hvuaudit ingest" in result.output


def test_ingest_cli_summary_and_json(tmp_path):
    db = tmp_path / "s.duckdb"
    args = [
        "ingest",
        str(FIXTURES / "HVU_Val_tiny.csv"),
        "--categories",
        str(FIXTURES / "categories.csv"),
        "--db",
        str(db),
    ]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert (body["clips_added"], body["clip_tags_added"], body["tags_added"]) == (12, 41, 13)
    assert result.stderr.startswith("ingested 12 clips (41 clip-tags) from 1 file(s), added 13 tags")
    again = CliRunner().invoke(cli, args)
    assert (
        again.exit_code == 0
        and "1 file(s) already ingested, unchanged" in again.stderr
        and again.stdout == ""
    )


def test_ingest_cli_bad_input_exit_code(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(FIXTURES / "bad" / "empty_tags.csv"),
            "--subset",
            "val",
            "--categories",
            str(FIXTURES / "categories.csv"),
            "--db",
            str(tmp_path / "s.duckdb"),
        ],
    )
    assert result.exit_code == 3
    assert "empty_tags.csv, line 3: the Tags field is empty" in result.stderr and "hint:" in result.stderr
    assert not (tmp_path / "s.duckdb").exists()
    result = CliRunner().invoke(
        cli,
        [
            "ingest",
            str(FIXTURES / "HVU_Val_tiny.csv"),
            "--categories",
            str(FIXTURES / "categories.csv"),
            "--db",
            str(FIXTURES / "bad" / "not_a_store.db"),
        ],
    )
    assert result.exit_code == 4 and "cannot open store" in result.stderr


def test_stats_json(tiny_store):
    result = CliRunner().invoke(cli, ["stats", "--format", "json", "--db", str(tiny_store)])
    assert result.exit_code == 0
    body = json.loads(result.output)
    assert body["subsets"] == [
        {
            "subset": "val",
            "clips": 12,
            "clips_without_action": 1,
            "clips_without_scene": 2,
            "mean_tags_per_clip": 3.42,
        }
    ]
    scenes = next(r for r in body["categories"] if r["category"] == "scene")
    assert scenes == {"category": "scene", "tags_defined": 4, "tags_present": 4, "clip_tag_links": 10}


def test_store_from_an_older_version_gets_this_versions_views(tiny_store):
    """A store whose views are older (or missing) still reads right: read-only via TEMP views, read-write for
    good."""
    from hvuaudit.errors import StoreError
    from hvuaudit.store import has_stale_views, views_fingerprint
    from hvuaudit.tui.session import StoreSession

    with open_store(tiny_store) as con:
        expected = run_query(con, "stats_tags_per_clip")
        assert not has_stale_views(con)
    with open_store(tiny_store) as con:
        expected_clips = run_query(con, "clips_of_pair", action="surfing", tag="beach")
    with duckdb.connect(str(tiny_store)) as con:  # what an earlier hvuaudit left behind
        con.execute("DROP VIEW tags_per_clip; DROP TABLE store_meta; DROP TABLE tag_clip_ids")
        con.execute("CREATE OR REPLACE VIEW necessity AS SELECT 'stale' AS action")
    with open_store(tiny_store) as con:
        assert has_stale_views(con)
        assert run_query(con, "stats_tags_per_clip").equals(expected)
        assert "n11" in run_query(con, "necessary_pairs", category="scene", threshold=1.0).columns
        # a derived table cannot be made read-only: the error says how to bring the store up to date
        with pytest.raises(StoreError, match="tag_clip_ids") as raised:
            run_query(con, "clips_of_pair", action="surfing", tag="beach")
        assert "open it once for writing" in raised.value.hint
    result = CliRunner().invoke(
        cli, ["sql", "SELECT count(*) AS n FROM tags_per_clip", "--format", "json", "--db", str(tiny_store)]
    )  # sandboxed: no file access, settings locked
    assert result.exit_code == 0 and json.loads(result.stdout) == [{"n": 12 * 7}]
    session = StoreSession(tiny_store, read_only=True)  # the TUI reads through cursors
    with session.cursor() as cur:
        assert run_query(cur, "stats_tags_per_clip").equals(expected)
    session.close()
    with duckdb.connect(str(tiny_store), read_only=True) as con:  # read-only opens changed nothing
        assert con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = 'tags_per_clip'"
        ).fetchone() == (0,)
    open_store(tiny_store, read_only=False).close()
    with open_store(tiny_store) as con:
        assert run_query(con, "clips_of_pair", action="surfing", tag="beach").equals(expected_clips)
    with duckdb.connect(str(tiny_store), read_only=True) as con:
        assert con.execute("SELECT key, value FROM store_meta ORDER BY key").fetchall() == [
            ("duckdb_version", duckdb.__version__),
            ("views_sha256", views_fingerprint()),
        ]
        assert con.execute("SELECT count(*) FROM tag_clip_ids").fetchone() == (41,)
        assert con.execute("SELECT count(*) FROM necessity WHERE action = 'stale'").fetchone() == (0,)
    with open_store(tiny_store) as con:
        assert not has_stale_views(con)


def test_tags_per_clip_histogram_and_quartiles_match_the_csv(real_store):
    """Both tags-per-clip queries agree with a count made directly from the CSV and the category file."""
    import numpy as np
    import polars as pl

    from tests.conftest import HVU_CATEGORIES, HVU_VAL

    category_of = dict(pl.read_csv(HVU_CATEGORIES).select("Tag", "Category").iter_rows())
    categories = ("action", "attribute", "concept", "event", "object", "scene")
    per_clip = {c: [] for c in ("all", *categories)}
    for tags in pl.read_csv(HVU_VAL)["Tags"]:
        found = [category_of[t] for t in tags.split("|")]
        per_clip["all"].append(len(found))
        for c in categories:
            per_clip[c].append(found.count(c))
    expected_histogram = {
        (c, int(n)): int(k)
        for c, values in per_clip.items()
        for n, k in zip(*np.unique(values, return_counts=True), strict=True)
    }

    with open_store(real_store) as con:
        histogram = run_query(con, "tags_per_clip_histogram")
        quartiles = {
            row["category"]: row for row in run_query(con, "stats_tags_per_clip").iter_rows(named=True)
        }
    assert {(c, n): k for c, n, k in histogram.iter_rows()} == expected_histogram
    assert histogram.filter(pl.col("category") == "scene").row(0) == (
        "scene",
        0,
        14_971,
    )  # clips without a scene
    for c, values in per_clip.items():
        assert quartiles[c]["median"] == np.median(values)
        assert (quartiles[c]["min"], quartiles[c]["max"]) == (min(values), max(values))
        assert quartiles[c]["mean"] == pytest.approx(np.mean(values), abs=0.005)


def test_nca_cli_json_keys_and_errors(tiny_store):
    runner = CliRunner()
    result = runner.invoke(cli, ["nca", "--category", "object", "--format", "json", "--db", str(tiny_store)])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert list(rows[0]) == [
        "action",
        "tag",
        "n_action",
        "n_tag",
        "n11",
        "n12",
        "n22",
        "ratio",
        "share",
        "necessary",
        "p_value",
        "q_value",
        "clips",
    ]
    assert {row["clips"] for row in rows} == {"labelled"}  # the default (hvuaudit.categories)
    for args, code, text in [
        (["nca", "--clips", "some"], 2, "'some' is not one of 'all', 'labelled'"),
        (["nca", "--category", "place"], 3, "unknown category 'place'"),
        (["nca", "--threshold", "abc"], 3, "threshold must be a number"),
        (["nca", "--threshold", "-1"], 3, "threshold must be a number >= 0"),
        (["nca", "sweep", "--thresholds", "0:1:-0.1"], 3, "step must be > 0"),
        (["nca", "--subset", "train"], 3, "unknown subset 'train'"),
    ]:
        result = runner.invoke(cli, [*args, "--db", str(tiny_store)])
        assert result.exit_code == code and text in result.stderr, (args, result.output)


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_nca_figures_draw_both_clip_modes_side_by_side(tiny_store, tmp_path):
    runner = CliRunner()
    one, both = tmp_path / "one.png", tmp_path / "both.png"
    args = ["nca", "sweep", "--category", "scene", "--db", str(tiny_store)]
    assert runner.invoke(cli, [*args, "--plot", str(one)]).exit_code == 0
    result = runner.invoke(cli, [*args, "--category", "object", "--clips", "both", "--plot", str(both)])
    assert result.exit_code == 0
    # one mode, one category: one panel; both modes and a pair: two panels wide, curves above bands
    (w1, h1), (w2, h2) = _png_size(one), _png_size(both)
    assert w2 == pytest.approx(2 * w1, abs=2) and h2 == pytest.approx(2 * h1, abs=2)
    result = runner.invoke(
        cli, [*args, "--category", "object", "--clips", "both", "--thresholds", "0,1", "--format", "json"]
    )
    doc = json.loads(result.stdout)
    assert {r["clips"] for r in doc["sweep"]} == {"all", "labelled"} and len(doc["sweep"]) == 8
    assert {(r["clips"], r["threshold"]) for r in doc["differences"]} == {
        (m, t) for m in ("all", "labelled") for t in (0.0, 1.0)
    }
    assert set(doc["differences"][0]) == {
        "clips", "threshold", "category", "versus", "difference", "ci_low", "ci_high",
        "sign_test_p", "confidence", "resamples", "seed",
    }  # fmt: skip
    matrix_one, matrix_both = tmp_path / "m1.png", tmp_path / "m2.png"
    margs = ["nca", "matrix", "--db", str(tiny_store), "--plot"]
    assert runner.invoke(cli, [*margs, str(matrix_one)]).exit_code == 0
    assert runner.invoke(cli, [*margs, str(matrix_both), "--clips", "both"]).exit_code == 0
    assert _png_size(matrix_both)[1] == pytest.approx(2 * _png_size(matrix_one)[1], abs=2)  # a row per mode
    # two tables do not make one CSV stream: refused, with the way to get both
    result = runner.invoke(cli, [*args, "--format", "csv"])
    assert result.exit_code == 3 and "add --output out.csv to write out_sweep.csv, out_differences.csv" in (
        result.stderr
    )
    result = runner.invoke(cli, [*args, "--format", "csv", "-o", str(tmp_path / "s.csv")])
    assert result.exit_code == 0
    assert (tmp_path / "s_differences.csv").read_text().startswith("clips,threshold,category,versus,")
    result = runner.invoke(cli, ["nca", "--clips", "both", "--db", str(tiny_store)])
    assert result.exit_code == 2  # one table per mode: `both` is for the figures only


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if name in LAZY_COMMANDS and not prefix:
            command = command._load()  # the real (torch-side) command behind the lazy placeholder
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", list(_all_commands(cli)), ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`hvuaudit {' '.join(path)} --help` has no example"


@pytest.mark.parametrize(
    "args", [["train", "--split", "nowhere"], ["eval", "nowhere"], ["explain", "nowhere", "--clips", "c"]]
)
def test_a_command_of_the_train_extra_without_torch_says_what_to_install(args, tmp_path):
    """Where torch is not installed (blocked here), the command names the extra instead of a traceback."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['av'] = None; "
        f"from hvuaudit.cli import main; sys.argv = ['hvuaudit', *{args!r}]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert f"'{args[0]}' needs the training extra" in done.stderr
    assert "pip install -e '.[train]'" in done.stderr and "Traceback" not in done.stderr


def test_a_broken_install_is_a_traceback_and_exit_1_not_a_hang(tmp_path):
    """A module of ours that is missing is a bug to report: its traceback, promptly."""
    code = (
        "import sys; sys.modules['trainer.cli'] = None; "
        "from hvuaudit.cli import main; sys.argv = ['hvuaudit', 'train', '--split', 'x']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr and "trainer.cli" in done.stderr
