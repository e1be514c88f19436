"""Nothing a user gives is lost: every destructive path tried against the wrong target.

Each test makes a command aim at something it must never destroy (the store, its
log, an input, a folder hvuaudit did not write, /, the home folder) and checks that
the command refuses with its documented exit code and that the target is unchanged.
Also the bad-input cases that used to crash or lose rows silently. No torch needed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvucontracts.files import OWNER_FILE, TMP_TAG
from tests.conftest import FIXTURES
from tests.store_checks import fingerprint

CATEGORIES = FIXTURES / "categories.csv"
TINY_CSV = FIXTURES / "HVU_Val_tiny.csv"


def run(*args: str | Path, env: dict | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (what must survive a refused command)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------- -o never replaces an input

OUTPUT_CASES = [
    ("sql", ["sql", "SELECT 1", "--format", "csv", "-o", "{store}"]),
    ("sql onto the .wal", ["sql", "SELECT 1", "--format", "csv", "-o", "{wal}"]),
    ("sql onto its own .sql file", ["sql", "{query}", "--format", "csv", "-o", "{query}"]),
    ("stats", ["stats", "--format", "csv", "-o", "{store}"]),
    ("nca", ["nca", "--format", "csv", "-o", "{store}"]),
    ("nca onto the .wal", ["nca", "-o", "{wal}"]),
    ("nca matrix --plot", ["nca", "matrix", "--plot", "{store}"]),
    ("nca sweep -o", ["nca", "sweep", "--format", "csv", "-o", "{store}"]),
    ("nca sweep --plot", ["nca", "sweep", "--plot", "{store}"]),
    ("nca roles", ["nca", "roles", "-o", "{store}"]),
    ("split list", ["split", "list", "--format", "csv", "-o", "{store}"]),
    ("annotate queue", ["annotate", "queue", "--format", "csv", "-o", "{store}"]),
    ("annotate export", ["annotate", "export", "-o", "{store}"]),
    ("annotate export onto another store", ["annotate", "export", "-o", "{other_store}"]),
    ("default store from $HVUAUDIT_DB", ["nca", "--format", "csv", "-o", "{store}", "--no-db"]),
]


@pytest.mark.parametrize(("name", "args"), OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_an_output_never_replaces_the_store_its_log_or_an_input(tiny_store, tmp_path, name, args):
    wal = tiny_store.with_name(tiny_store.name + ".wal")
    wal.write_bytes(b"")  # as DuckDB leaves it after a clean close
    query = tmp_path / "q.sql"
    query.write_text("SELECT 1 AS one\n")
    other_store = tmp_path / "other.duckdb"
    shutil.copy(tiny_store, other_store)
    values = {"store": tiny_store, "wal": wal, "query": query, "other_store": other_store}
    argv = [a.format(**values) for a in args if a != "--no-db"]
    env = None
    if "--no-db" in args:
        env = {"HVUAUDIT_DB": str(tiny_store)}
    else:
        argv += ["--db", str(tiny_store)]
    before = {p: p.read_bytes() for p in (tiny_store, wal, query, other_store)}
    result = run(*argv, env=env)
    assert result.exit_code == 5, result.output
    assert "refused to write" in result.output
    assert {p: p.read_bytes() for p in before} == before


def test_plot_commands_refuse_a_store_as_output(tiny_store):
    pytest.importorskip("torch")
    before = tiny_store.read_bytes()
    result = run("plot", "curves", "no-such-run", "-o", tiny_store)
    assert result.exit_code == 5, result.output
    assert "it is a DuckDB store" in result.output
    assert tiny_store.read_bytes() == before


# --------------------------------------------------------------------------- --db that is not a store


@pytest.mark.parametrize(
    "command",
    [
        ["ingest", str(TINY_CSV), "--categories", str(CATEGORIES)],
        ["stats"],
        ["annotate", "import", str(TINY_CSV)],
    ],
)
def test_a_db_that_is_not_duckdb_is_refused_and_left_alone(tmp_path, command):
    not_a_store = tmp_path / "a.csv"
    shutil.copy(TINY_CSV, not_a_store)
    before = not_a_store.read_bytes()
    result = run(*command, "--db", not_a_store)
    assert result.exit_code == 4, result.output
    assert "not a DuckDB file" in result.output
    assert not_a_store.read_bytes() == before


# --------------------------------------------------------------------------- no store left behind


@pytest.mark.parametrize("how", ["default ./hvu.duckdb", "$HVUAUDIT_DB"])
def test_a_refused_ingest_leaves_no_store_behind(tmp_path, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    env = {"HVUAUDIT_DB": str(tmp_path / "env.duckdb")} if how == "$HVUAUDIT_DB" else None
    result = run(
        "ingest", FIXTURES / "bad" / "unknown_tag.csv", "--subset", "val", "--categories", CATEGORIES, env=env
    )
    assert result.exit_code == 3, result.output
    assert not (tmp_path / "hvu.duckdb").exists() and not (tmp_path / "env.duckdb").exists()
    assert not list(tmp_path.glob("*.wal"))


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["nca"],
        ["sql", "SELECT 1"],
        ["split", "--variant", "2", "--out", "out/si2"],
        ["annotate", "import", str(FIXTURES / "categories.csv")],
        ["annotate", "queue"],
    ],
)
def test_a_mistyped_db_creates_no_store(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = run(*command, "--db", tmp_path / "mistyped.duckdb")
    assert result.exit_code == 4, result.output
    assert "does not exist" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- split --force


def _split(store: Path, out: Path | str, *extra: str):
    # the tiny store's training pairs have no clip to spare for a selection set
    return run(
        "split",
        "--variant",
        "2",
        "--min-videos",
        "1",
        "--select-fraction",
        "0",
        "--out",
        out,
        "--db",
        store,
        *extra,
    )


def test_split_force_replaces_its_own_folder(tiny_store, tmp_path):
    out = tmp_path / "si2"
    assert _split(tiny_store, out).exit_code == 0
    first = tree(out)
    assert OWNER_FILE in first
    refused = _split(tiny_store, out)
    assert refused.exit_code == 5 and "--force" in refused.output
    again = _split(tiny_store, out, "--force")
    assert again.exit_code == 0, again.output
    assert sorted(tree(out)) == sorted(first)
    assert not [p for p in tmp_path.iterdir() if TMP_TAG in p.name]  # no staging or retired folder left


def test_split_force_never_deletes_a_file_it_did_not_write(tiny_store, tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "x").write_text("mine")
    result = _split(tiny_store, out, "--force")
    assert result.exit_code == 5, result.output
    assert "not made by hvuaudit" in result.output and "x" in result.output
    assert tree(out) == {"x": b"mine"}


def test_split_force_refuses_its_own_folder_with_a_stray_file(tiny_store, tmp_path):
    out = tmp_path / "si2"
    assert _split(tiny_store, out).exit_code == 0
    (out / "notes.txt").write_text("keep me")
    (out / "sub").mkdir()
    (out / "sub" / "deep.txt").write_text("me too")
    before = tree(out)
    result = _split(tiny_store, out, "--force")
    assert result.exit_code == 5, result.output
    assert "notes.txt" in result.output and "sub/deep.txt" in result.output
    assert tree(out) == before


def test_a_fake_manifest_does_not_make_a_folder_replaceable(tiny_store, tmp_path):
    out = tmp_path / "looks_like_a_split"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"format": "hvuaudit-split/1"}))
    (out / "data.csv").write_text("precious")
    before = tree(out)
    assert _split(tiny_store, out, "--force").exit_code == 5
    assert tree(out) == before


@pytest.mark.parametrize(
    "target",
    [
        "store",
        "folder holding the store",
        "root",
        "current folder",
        "home",
        "videos",
        "folder holding the videos",
    ],
)
def test_split_force_never_touches_protected_paths(tiny_store, tmp_path, monkeypatch, target):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("keep")
    monkeypatch.chdir(work)
    videos = tmp_path / "media" / "videos"
    videos.mkdir(parents=True)
    (videos / "clip.mp4").write_bytes(b"\x00video")
    out = {
        "store": tiny_store,
        "folder holding the store": tiny_store.parent,
        "root": Path("/"),
        "current folder": Path("."),
        "home": home,
        "videos": videos,
        "folder holding the videos": videos.parent,
    }[target]
    before_store = tiny_store.read_bytes()
    snapshot = {p: tree(p) for p in (home, work, videos)}
    result = _split(tiny_store, out, "--force", "--videos", str(videos))
    assert result.exit_code == 5, result.output
    assert tiny_store.read_bytes() == before_store
    assert {p: tree(p) for p in snapshot} == snapshot


def test_a_stale_staging_folder_is_removed_only_when_it_is_provably_ours(tiny_store, tmp_path):
    from hvucontracts.files import owner_marker

    ours = tmp_path / f".si2{TMP_TAG}killed"
    ours.mkdir()
    (ours / OWNER_FILE).write_bytes(owner_marker("split", ["train.csv"]))
    (ours / "train.csv").write_text("half")
    theirs = tmp_path / f".si2{TMP_TAG}notours"
    theirs.mkdir()
    (theirs / "x").write_text("mine")
    assert _split(tiny_store, tmp_path / "si2").exit_code == 0
    assert not ours.exists()
    assert tree(theirs) == {"x": b"mine"}


# --------------------------------------------------------------------------- demo and synth --force


def test_demo_force_does_not_delete_a_folder_holding_a_demo_json(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("av")
    pytest.importorskip("sklearn")
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "demo.json").write_text("{}")
    (folder / "paper.pdf").write_bytes(b"%PDF")
    before = tree(folder)
    result = run("demo", "--out", folder, "--force", "--quick")
    assert result.exit_code == 5, result.output
    assert tree(folder) == before


def test_synth_videos_force_does_not_delete_a_foreign_videos_folder(tmp_path):
    pytest.importorskip("av")
    folder = tmp_path / "mine"
    (folder / "videos").mkdir(parents=True)
    (folder / "videos" / "holiday.mp4").write_bytes(b"\x00")
    before = tree(folder)
    result = run("synth", "videos", "--out", folder, "--force")
    assert result.exit_code == 5, result.output
    assert tree(folder) == before


# --------------------------------------------------------------------------- ingest rows


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_row_too_long_is_refused_with_its_line_even_as_the_last_row(tiny_store, tmp_path):
    long_tags = "|".join(["walking"] * 400_000)  # 3.2 MB: longer than DuckDB's own row limit
    for name, rows in (
        ("last", "walking|beach,aaa,0,2\n" + f"{long_tags},bbb,0,2\n"),
        ("only", f"{long_tags},bbb,0,2\n"),
    ):
        path = _csv(tmp_path / f"HVU_Val_{name}.csv", "Tags,youtube_id,time_start,time_end\n" + rows)
        before = fingerprint(tiny_store)
        result = run("ingest", path, "--db", tiny_store)
        assert result.exit_code == 3, result.output
        line = 3 if name == "last" else 2
        assert f"line {line}: the row is" in result.output
        assert fingerprint(tiny_store) == before  # no sources row either: a later ingest is not skipped


def test_columns_are_read_by_name(tmp_path):
    reordered = _csv(
        tmp_path / "HVU_Val_reordered.csv",
        "youtube_id,Tags,time_end,time_start\n"
        + "".join(
            f"{yid},{tags},{end},{start}\n"
            for tags, yid, start, end in (
                line.split(",") for line in TINY_CSV.read_text().strip().splitlines()[1:]
            )
        ),
    )
    normal, swapped = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    assert run("ingest", TINY_CSV, "--categories", CATEGORIES, "--db", normal).exit_code == 0
    result = run("ingest", reordered, "--categories", CATEGORIES, "--db", swapped)
    assert result.exit_code == 0, result.output
    clips = (
        "SELECT c.youtube_id, c.time_start, c.time_end, t.tag FROM clips c JOIN clip_tags t USING (clip_id) "
        "ORDER BY ALL"
    )
    with duckdb.connect(str(normal), read_only=True) as a, duckdb.connect(str(swapped), read_only=True) as b:
        assert a.sql(clips).fetchall() == b.sql(clips).fetchall()


def test_a_header_with_an_extra_column_is_refused(tmp_path):
    path = _csv(
        tmp_path / "HVU_Val_extra.csv", "Tags,youtube_id,time_start,time_end,label\nwalking,a,0,2,x\n"
    )
    result = run("ingest", path, "--categories", CATEGORIES, "--db", tmp_path / "s.duckdb")
    assert result.exit_code == 3 and "line 1: unexpected column(s) label" in result.output
    assert not (tmp_path / "s.duckdb").exists()


def test_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    text = (
        'Tags,youtube_id,time_start,time_end\n\nwalking,a,0,2\n"walking|\nbeach",b,0,2\n\n\n'
        "walking,c,zero,2\n"
    )
    path = _csv(tmp_path / "HVU_Val_lines.csv", text)
    result = run("ingest", path, "--categories", CATEGORIES, "--db", tmp_path / "s.duckdb")
    assert result.exit_code == 3, result.output
    assert 'line 8: time_start "zero" is not a number' in result.output


@pytest.mark.parametrize(
    "value",
    [
        "1e3",
        "1_000",
        " 5 ",
        "nan",
        "inf",
        "+3",
        "0x10",
        "",
        "1.",
        "9" * 400,
        "99999999999999999999999",
        "10.0000000000000001",
        "1234567890",
    ],
)
def test_a_time_is_a_plain_decimal_number(tmp_path, value):
    path = _csv(tmp_path / "HVU_Val_t.csv", f"Tags,youtube_id,time_start,time_end\nwalking,a,{value},9\n")
    result = run("ingest", path, "--categories", CATEGORIES, "--db", tmp_path / "s.duckdb")
    assert result.exit_code == 3, result.output
    assert f'line 2: time_start "{value}" is not a number' in result.output


def test_plain_decimal_times_are_accepted(tmp_path):
    path = _csv(
        tmp_path / "HVU_Val_t.csv",
        "Tags,youtube_id,time_start,time_end\nsurfing,a,40.5,42\nsurfing,b,0,10.25\n",
    )
    result = run("ingest", path, "--categories", CATEGORIES, "--db", tmp_path / "s.duckdb")
    assert result.exit_code == 0, result.output


def test_nan_start_is_reported_as_not_a_number(tmp_path):
    path = _csv(tmp_path / "HVU_Val_t.csv", "Tags,youtube_id,time_start,time_end\nwalking,a,nan,3.0\n")
    result = run("ingest", path, "--categories", CATEGORIES, "--db", tmp_path / "s.duckdb")
    assert 'time_start "nan" is not a number' in result.output and "before" not in result.output


# --------------------------------------------------------------------------- data is never markup


def test_tags_that_look_like_rich_markup_are_printed_as_they_are(tmp_path):
    cats = _csv(tmp_path / "cats.csv", "Tag,Category\nskiing,action\n[/a],scene\n[bold]s[/bold],object\n")
    data = _csv(
        tmp_path / "HVU_Val_m.csv",
        "Tags,youtube_id,time_start,time_end\nskiing|[/a]|[bold]s[/bold],a,0,2\nskiing|[/a],b,0,2\n",
    )
    db = tmp_path / "m.duckdb"
    assert run("ingest", data, "--categories", cats, "--db", db).exit_code == 0
    wide = {"COLUMNS": "200"}
    scene = run("nca", "--category", "scene", "--db", db, env=wide)
    assert scene.exit_code == 0, scene.output
    assert "[/a]" in scene.output
    obj = run("nca", "--category", "object", "--db", db, env=wide)
    assert obj.exit_code == 0 and "[bold]s[/bold]" in obj.output


@pytest.mark.parametrize(
    "statement", ["SELECT INTERVAL 3 DAY AS gap, 1 AS n", "SELECT * FROM duckdb_settings()"]
)
def test_sql_shows_every_duckdb_type(tiny_store, statement):
    for fmt in ("table", "json", "csv"):
        result = run("sql", statement, "--format", fmt, "--db", tiny_store)
        assert result.exit_code == 0, result.output
    assert (
        "3 days" in run("sql", statement, "--format", "csv", "--db", tiny_store).output
        or "duckdb_settings" in statement
    )


# --------------------------------------------------------------------------- annotate import


def _answers_csv(path: Path, rows: list[str]) -> Path:
    return _csv(
        path,
        "annotator,action,tag,category,answer,note,answered_at,source\n" + "".join(r + "\n" for r in rows),
    )


def test_import_of_a_file_that_is_not_utf8_names_the_line(tiny_store, tmp_path):
    path = tmp_path / "answers.csv"
    path.write_bytes(
        "annotator,action,tag,category,answer,note,answered_at,source\n"
        "ab,surfing,beach,scene,necessary,café,2026-01-01T10:00:00,x\n".encode("latin-1")
    )
    result = run("annotate", "import", path, "--db", tiny_store)
    assert result.exit_code == 3 and "line 2: the file is not UTF-8" in result.output


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "a JSON list, not an object"),
        (
            '{"annotator": 5, "action": "surfing", "tag": "beach", "category": "scene", '
            '"answer": "necessary", '
            '"note": null, "answered_at": "2026-01-01T10:00:00", "source": null}',
            "field 'annotator' is a int",
        ),
        ('{"annotator": "ab"}', "missing field(s)"),
        ("not json", "not JSON"),
    ],
)
def test_import_of_mistyped_jsonl_names_the_line(tiny_store, tmp_path, line, message):
    path = _csv(tmp_path / "answers.jsonl", "\n" + line + "\n")
    before = fingerprint(tiny_store)
    result = run("annotate", "import", path, "--db", tiny_store)
    assert result.exit_code == 3, result.output
    assert "line 2:" in result.output and message in result.output
    assert fingerprint(tiny_store) == before


def test_import_line_numbers_count_blank_lines_and_quoted_newlines(tiny_store, tmp_path):
    path = _answers_csv(
        tmp_path / "answers.csv",
        [
            "",
            'ab,surfing,beach,scene,necessary,"two\nlines",2026-01-01T10:00:00,x',
            "",
            "ab,surfing,no_such_tag,scene,necessary,,2026-01-01T10:00:00,x",
        ],
    )
    result = run("annotate", "import", path, "--db", tiny_store)
    assert result.exit_code == 3 and "line 6: 'no_such_tag' is not a scene tag" in result.output


def test_equal_timestamps_keep_the_stored_answer(tiny_store, tmp_path):
    first = _answers_csv(tmp_path / "a.csv", ["ab,surfing,beach,scene,necessary,,2026-01-01T10:00:00,x"])
    second = _answers_csv(tmp_path / "b.csv", ["ab,surfing,beach,scene,unsure,,2026-01-01T10:00:00,y"])
    assert run("annotate", "import", first, "--db", tiny_store).exit_code == 0
    result = run("annotate", "import", second, "--db", tiny_store)
    assert result.exit_code == 0 and "kept the stored one (equal answered_at)" in result.output
    with duckdb.connect(str(tiny_store), read_only=True) as con:
        assert con.sql("SELECT answer FROM annotations").fetchall() == [("necessary",)]


def test_equal_timestamps_between_files_go_to_the_later_file(tiny_store, tmp_path):
    first = _answers_csv(tmp_path / "a.csv", ["ab,surfing,beach,scene,necessary,,2026-01-01T10:00:00,x"])
    second = _answers_csv(tmp_path / "b.csv", ["ab,surfing,beach,scene,unsure,,2026-01-01T10:00:00,y"])
    assert run("annotate", "import", first, second, "--db", tiny_store).exit_code == 0
    with duckdb.connect(str(tiny_store), read_only=True) as con:
        assert con.sql("SELECT answer FROM annotations").fetchall() == [("unsure",)]


# --------------------------------------------------------------------------- permissions follow the umask


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_follow_the_umask(tiny_store, tmp_path, mask, file_mode, dir_mode):
    old = os.umask(mask)
    try:
        assert run("nca", "--format", "csv", "-o", tmp_path / "nca.csv", "--db", tiny_store).exit_code == 0
        assert run("nca", "roles", "-o", tmp_path / "tasks.json", "--db", tiny_store).exit_code == 0
        assert _split(tiny_store, tmp_path / "si2").exit_code == 0
    finally:
        os.umask(old)
    for path in [tmp_path / "nca.csv", tmp_path / "tasks.json", *(tmp_path / "si2").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == file_mode, path
    assert stat.S_IMODE((tmp_path / "si2").stat().st_mode) == dir_mode


# --------------------------------------------------------------------------- damaged hvuaudit files


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_a_damaged_manifest_is_a_message_not_a_traceback(tiny_store, tmp_path, content):
    out = tmp_path / "si2"
    assert _split(tiny_store, out).exit_code == 0
    (out / "manifest.json").write_bytes(content)
    result = run("split", "verify", out, "--db", tiny_store)
    assert result.exit_code == 3, result.output
    assert "manifest.json" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe"])
def test_a_damaged_demo_json_is_a_message_and_nothing_is_deleted(tmp_path, content):
    pytest.importorskip("torch")
    pytest.importorskip("av")
    pytest.importorskip("sklearn")
    from hvucontracts.files import write_owner_marker

    folder = tmp_path / "demo"
    write_owner_marker(folder, "demo", ["demo.json", "REPORT.md", "results.json"])
    (folder / "demo.json").write_bytes(content)
    (folder / "REPORT.md").write_text("the report")
    before = tree(folder)
    result = run("demo", "--out", folder, "--quick")
    assert result.exit_code == 3, result.output
    assert "demo.json" in result.output and "--force" in result.output
    assert tree(folder) == before


# --------------------------------------------------------------------------- the store knows its engine


def test_the_store_records_the_duckdb_that_wrote_it(tiny_store):
    from hvuaudit.store import store_writer_version

    assert store_writer_version(tiny_store) == duckdb.__version__  # in the file's own header
    with duckdb.connect(str(tiny_store), read_only=True) as con:
        recorded = con.execute("SELECT value FROM store_meta WHERE key = 'duckdb_version'").fetchall()
    assert recorded == [(duckdb.__version__,)]


def test_a_store_from_a_newer_duckdb_names_both_versions(tiny_store, monkeypatch):
    """Simulated: the installed DuckDB refuses the file with the message DuckDB 1.4.1 gives for a 2.x
    store."""
    data = bytearray(tiny_store.read_bytes())
    at = data.find(f"v{duckdb.__version__}".encode())
    assert at > 0
    data[at : at + len(duckdb.__version__) + 1] = b"v9.9.9".ljust(len(duckdb.__version__) + 1, b"\0")
    tiny_store.write_bytes(bytes(data))
    real_connect = duckdb.connect

    def older_duckdb(path, *args, **kwargs):
        if str(path) == str(tiny_store):
            raise duckdb.IOException(
                "IO Error: Trying to read a database file with version number 999, but we can only read "
                "versions "
                "between 64 and 67.\nThe database file was created with an newer version of DuckDB."
            )
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", older_duckdb)
    result = run("stats", "--db", tiny_store)
    assert result.exit_code == 4, result.output
    assert (
        "written by DuckDB 9.9.9" in result.output
        and f"installed DuckDB {duckdb.__version__}" in result.output
    )
    assert "pip install --upgrade duckdb" in result.output and "Traceback" not in result.output


def test_a_damaged_store_header_is_not_called_a_lock(tiny_store):
    data = bytearray(tiny_store.read_bytes())
    data[20:28] = b"\x01" * 8  # inside the checksummed main header
    tiny_store.write_bytes(bytes(data))
    result = run("stats", "--db", tiny_store)
    assert result.exit_code == 4, result.output
    assert "damaged" in result.output and "another process" not in result.output


def test_a_negative_end_is_refused(tmp_path):
    path = _csv(tmp_path / "HVU_Val_t.csv", "Tags,youtube_id,time_start,time_end\nsurfing,a,0,-3\n")
    result = run("ingest", path, "--categories", CATEGORIES, "--db", tmp_path / "s.duckdb")
    assert result.exit_code == 3 and "line 2: time_end -3 is negative" in result.output


# --------------------------------------------------------------------------- the second review's cases


def test_synth_videos_force_never_deletes_a_file_added_among_the_videos(tmp_path):
    pytest.importorskip("av")
    args = [
        "synth",
        "videos",
        "--out",
        tmp_path / "bench",
        "--clips",
        "200",
        "--test-clips",
        "8",
        "--indist-clips",
        "8",
        "--uniform-clips",
        "8",
        "--control-clips",
        "0",
        "--frames",
        "2",
        "--size",
        "16",
        "--sprite",
        "4",
        "--workers",
        "1",
    ]
    assert run(*args).exit_code == 0
    (tmp_path / "bench" / "videos" / "MY_OWN_CLIP.mp4").write_bytes(b"mine")
    refused = run(*args, "--force")
    assert refused.exit_code == 5, refused.output
    assert "videos/MY_OWN_CLIP.mp4" in refused.output
    assert (tmp_path / "bench" / "videos" / "MY_OWN_CLIP.mp4").read_bytes() == b"mine"
    (tmp_path / "bench" / "videos" / "MY_OWN_CLIP.mp4").unlink()
    assert run(*args, "--force").exit_code == 0  # its own files alone: replaced


def test_demo_force_never_deletes_a_file_added_after_a_step(tmp_path):
    pytest.importorskip("torch")
    from hvudemo.pipeline import _adopt_outputs, _prepare_out
    from hvudemo.settings import demo_settings

    settings = demo_settings(quick=True, seeds=None)
    out = tmp_path / "demo"
    _prepare_out(out, settings, force=False)
    (out / "runs" / "main").mkdir(parents=True)
    (out / "runs" / "main" / "metrics.jsonl").write_text("{}")
    _adopt_outputs(out, settings)  # what a finished step does
    (out / "figures").mkdir()
    (out / "figures" / "my_annotated_fig4.png").write_bytes(b"mine")
    with pytest.raises(Exception, match="figures/my_annotated_fig4.png") as refused:
        _prepare_out(out, settings, force=True)
    assert getattr(refused.value, "exit_code", None) == 5
    assert (out / "figures" / "my_annotated_fig4.png").read_bytes() == b"mine"
    (out / "figures" / "my_annotated_fig4.png").unlink()
    _prepare_out(out, settings, force=True)
    assert not (out / "runs").exists()  # the adopted run file went with --force


@pytest.mark.parametrize("entry", ["../victim.txt", "/abs/victim.txt", "sub/../../victim.txt", "./x", ""])
def test_a_tampered_marker_makes_a_folder_foreign(tiny_store, tmp_path, entry):
    from hvucontracts.files import owner_marker

    out = tmp_path / "si2"
    assert _split(tiny_store, out).exit_code == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    marker = json.loads((out / OWNER_FILE).read_text())
    (out / OWNER_FILE).write_bytes(
        owner_marker("split", [*marker["files"], entry.replace("/abs", str(tmp_path))])
    )
    result = _split(tiny_store, out, "--force")
    assert result.exit_code == 5, result.output
    assert "not made by hvuaudit" in result.output
    assert victim.read_text() == "precious" and (out / "train.csv").is_file()


def test_outputs_onto_links_devices_and_fifos_are_refused(tiny_store, tmp_path):
    target = tmp_path / "shared.csv"
    target.write_text("theirs")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    device = tmp_path / "nulldev"
    if os.geteuid() == 0:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    for output in [link, fifo, *([device] if device.exists() else [])]:
        result = run("sql", "SELECT 42 AS n", "--format", "csv", "-o", output, "--db", tiny_store)
        assert result.exit_code == 5, (output, result.output)
    assert link.is_symlink() and target.read_text() == "theirs"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert not device.exists() or stat.S_ISCHR(device.stat().st_mode)


def test_two_outputs_of_one_command_cannot_be_the_same_file(tiny_store, tmp_path):
    same = tmp_path / "same.png"
    result = run("nca", "sweep", "--format", "csv", "-o", same, "--plot", same, "--db", tiny_store)
    assert result.exit_code == 5, result.output
    assert not same.exists()


def test_sql_writes_bytes_to_csv_as_hex(tiny_store):
    result = run("sql", "SELECT 'x'::BLOB AS b", "--format", "csv", "--db", tiny_store)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "78"


def test_synth_annotations_never_replaces_files_it_did_not_write(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "HVU_Train_Synth.csv").write_text("MY PRECIOUS DATA")
    for extra in ([], ["--force"]):
        result = run("synth", "annotations", "--clips", "50", "--out", folder, *extra)
        assert result.exit_code == 5, result.output
    assert (folder / "HVU_Train_Synth.csv").read_text() == "MY PRECIOUS DATA"
    fresh = tmp_path / "fresh"
    assert run("synth", "annotations", "--clips", "50", "--out", fresh).exit_code == 0
    assert run("synth", "annotations", "--clips", "50", "--out", fresh).exit_code == 5
    assert run("synth", "annotations", "--clips", "60", "--out", fresh, "--force").exit_code == 0


def test_a_missing_file_is_said_first(tmp_path):
    result = run("ingest", tmp_path / "nonexistent.csv", "--db", tmp_path / "s.duckdb")
    assert result.exit_code == 3 and "nonexistent.csv: no such file" in result.output


def test_a_fresh_temporary_file_of_another_writer_is_left_alone(tmp_path):
    from hvucontracts.files import write_text_atomically

    target = tmp_path / "out.csv"
    fresh, old = tmp_path / f".out.csv{TMP_TAG}running", tmp_path / f".out.csv{TMP_TAG}killed"
    fresh.write_text("another process is writing this")
    old.write_text("a killed write")
    os.utime(old, (1, 1))
    write_text_atomically(target, "new")
    assert target.read_text() == "new" and fresh.exists() and not old.exists()


def test_ctrl_c_once_the_commit_has_begun_is_not_reported_as_undone(tmp_path):
    """A Ctrl-C during COMMIT or the close after it cannot undo the ingest: it is said so, and exit 0."""
    import subprocess
    import sys

    from hvuaudit.store import open_store
    from tests.conftest import FIXTURES

    db = tmp_path / "s.duckdb"
    code = (
        "import os, signal, sys\n"
        "import hvuaudit.store as store\n"
        "from hvucontracts import process\n"
        "def commit_then_ctrl_c():\n"
        "    process.commit_starting()\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "store.commit_starting = commit_then_ctrl_c\n"
        "from hvuaudit.cli import main\n"
        f"sys.argv = ['hvuaudit', 'ingest', {str(FIXTURES / 'HVU_Val_tiny.csv')!r}, "
        f"'--categories', {str(FIXTURES / 'categories.csv')!r}, '--db', {str(db)!r}]\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Ctrl-C came after the commit had begun; the ingest is complete" in done.stderr
    with open_store(db) as con:
        assert con.execute("SELECT count(*) FROM clips").fetchone() == (12,)


def test_make_floors_never_deletes_a_folder_that_is_not_a_venv(tmp_path):
    """`make floors` starts from a fresh venv: FLOORS_VENV pointed at a real folder must not wipe it."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    precious = tmp_path / "my-work"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        ["make", "-C", str(root), "floors", f"FLOORS_VENV={precious}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "is not a virtual environment; refusing to delete it" in done.stderr
    assert (precious / "notes.txt").read_text() == "keep me"
