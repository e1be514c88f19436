"""Ingest: counts against an independent csv-module count, idempotence, and every bad input."""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections import Counter

import duckdb
import pytest

from hvuaudit.errors import InputError, StoreError
from hvuaudit.ingest import ingest
from tests.conftest import FIXTURES, HVU_CATEGORIES, HVU_VAL

BAD = FIXTURES / "bad"


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_real_validation_counts_match_an_independent_count(real_store):
    with HVU_VAL.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    categories = dict(csv.reader(HVU_CATEGORIES.open(encoding="utf-8")))
    clip_tags = Counter()
    for row in rows:
        for tag in set(row["Tags"].split("|")):
            clip_tags[tag] += 1
    con = duckdb.connect(str(real_store), read_only=True)
    assert con.execute("SELECT count(*) FROM clips").fetchall()[0][0] == len(rows) == 31171
    assert con.execute("SELECT count(*) FROM clip_tags").fetchall()[0][0] == sum(clip_tags.values())
    assert con.execute("SELECT count(*) FROM tags").fetchall()[0][0] == len(categories) - 1  # minus header
    # 1,538 rows share a YouTube video with an earlier row: clips are keyed by video AND times.
    videos = Counter(r["youtube_id"] for r in rows)
    assert sum(n - 1 for n in videos.values()) == 1538
    assert con.execute("SELECT count(DISTINCT clip_id) FROM clips").fetchall()[0][0] == len(rows)
    counts = dict(con.execute("SELECT tag, n_clips FROM tag_counts WHERE n_clips > 0").fetchall())
    assert counts == dict(clip_tags)


@pytest.mark.parametrize(
    ("action", "scene"),
    [("doing_karate", "sport_venue"), ("playing_congas", "stage"), ("surfing_water", "ocean")],
)
def test_real_cooccurrence_matches_an_independent_count(real_store, action, scene):
    with HVU_VAL.open(newline="", encoding="utf-8") as handle:
        tag_sets = [set(r["Tags"].split("|")) for r in csv.DictReader(handle)]
    n_both = sum(action in s and scene in s for s in tag_sets)
    n_action = sum(action in s for s in tag_sets)
    n_scene = sum(scene in s for s in tag_sets)
    con = duckdb.connect(str(real_store), read_only=True)
    got = con.execute(
        "SELECT n_both, n_action, n_tag, n_clips, p_tag_given_action, lift FROM cooccurrence WHERE action = "
        "$a AND tag = $t",
        {"a": action, "t": scene},
    ).fetchall()
    if n_both == 0:
        assert got == []
        return
    assert got[0][:4] == (n_both, n_action, n_scene, len(tag_sets))
    assert got[0][4] == pytest.approx(n_both / n_action)
    assert got[0][5] == pytest.approx(n_both * len(tag_sets) / (n_action * n_scene))


def test_reingest_same_file_is_a_noop(tiny_store):
    before = _digest(tiny_store)
    summary = ingest([FIXTURES / "HVU_Val_tiny.csv"], FIXTURES / "categories.csv", db=tiny_store)
    assert summary.clips_added == 0
    assert summary.files[0].status.startswith("skipped")
    con = duckdb.connect(str(tiny_store), read_only=True)
    assert con.execute("SELECT count(*) FROM clips").fetchall()[0][0] == 12
    assert con.execute("SELECT count(*) FROM sources").fetchall()[0][0] == 1
    del before  # the file may be rewritten by DuckDB's checkpoint; the content is what matters


def test_subset_from_file_name_and_override(tmp_path):
    train = tmp_path / "HVU_Train_x.csv"
    train.write_text("Tags,youtube_id,time_start,time_end\nsurfing|beach,t1,0,2\n")
    other = tmp_path / "mine.csv"
    other.write_text("Tags,youtube_id,time_start,time_end\nsurfing|ocean,t2,0,2\n")
    db = tmp_path / "s.duckdb"
    ingest([train], FIXTURES / "categories.csv", db=db)
    with pytest.raises(InputError, match="cannot tell the subset"):
        ingest([other], None, db=db)
    ingest([other], None, db=db, subset="extra")
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT subset, count(*) FROM clips GROUP BY 1 ORDER BY 1").fetchall() == [
        ("extra", 1),
        ("train", 1),
    ]
    # the tag-ordered copy follows every ingest, not only the first
    together = "SELECT tag_id, clip_key FROM {} ORDER BY ALL"
    assert (
        con.execute(together.format("tag_clip_ids")).fetchall()
        == con.execute(together.format("clip_tag_ids")).fetchall()
    )
    assert con.execute("SELECT count(*) FROM tag_clip_ids").fetchone() == (4,)


def test_duplicate_tag_within_a_clip_counts_once(tmp_path):
    path = tmp_path / "HVU_Val_dup.csv"
    path.write_text("Tags,youtube_id,time_start,time_end\nsurfing|beach|beach,v,0,2\n")
    db = tmp_path / "s.duckdb"
    ingest([path], FIXTURES / "categories.csv", db=db)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(
        "SELECT n_both FROM cooccurrence WHERE action='surfing' AND tag='beach'"
    ).fetchall() == [(1,)]


def test_allow_unknown_stores_unknown_tags(tmp_path):
    db = tmp_path / "s.duckdb"
    summary = ingest(
        [BAD / "unknown_tag.csv"], FIXTURES / "categories.csv", db=db, subset="val", allow_unknown=True
    )
    assert summary.unknown_tags == 1
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT tag, n_clips FROM tag_counts WHERE category='unknown'").fetchall() == [
        ("volcano", 1)
    ]


BAD_CASES = [
    ("renamed_column.csv", r"renamed_column\.csv, line 1: missing column\(s\) time_start"),
    ("empty_tags.csv", r"empty_tags\.csv, line 3: the Tags field is empty"),
    (
        "unknown_tag.csv",
        r"unknown_tag\.csv, line 3: 1 tag\(s\) are not in the categories file, e\.g\. volcano",
    ),
    ("non_numeric_time.csv", r'non_numeric_time\.csv, line 2: time_start "zero" is not a number'),
    ("negative_time.csv", r"negative_time\.csv, line 2: time_start -3 is negative"),
    ("end_before_start.csv", r"end_before_start\.csv, line 3: time_end 4 is before time_start 9"),
    (
        "duplicate_clip.csv",
        r"duplicate clip v1 0-2 at .*duplicate_clip\.csv, line 2 and .*duplicate_clip\.csv, line 4",
    ),
    ("latin1.csv", r"latin1\.csv, line 3: the file is not UTF-8"),
    ("truncated.csv", r"truncated\.csv, line 3: the last line is cut off"),
    ("empty.csv", r"empty\.csv: the file is empty"),
    ("does_not_exist.csv", r"does_not_exist\.csv: no such file"),
]


@pytest.mark.parametrize(("name", "message"), BAD_CASES)
def test_bad_input_is_refused_and_the_store_is_unchanged(tiny_store, name, message):
    con = duckdb.connect(str(tiny_store), read_only=True)
    before = con.execute(
        "SELECT (SELECT count(*) FROM clips), (SELECT count(*) FROM clip_tag_ids), (SELECT count(*) FROM "
        "sources)"
    ).fetchall()
    con.close()
    with pytest.raises(InputError, match=message) as info:
        ingest([BAD / name], None, db=tiny_store, subset="val")
    assert info.value.hint  # every refusal says how to fix it
    con = duckdb.connect(str(tiny_store), read_only=True)
    after = con.execute(
        "SELECT (SELECT count(*) FROM clips), (SELECT count(*) FROM clip_tag_ids), (SELECT count(*) FROM "
        "sources)"
    ).fetchall()
    assert after == before


def test_duplicate_across_files_and_against_the_store(tiny_store, tmp_path):
    again = tmp_path / "HVU_Val_again.csv"
    again.write_text("Tags,youtube_id,time_start,time_end\nsurfing|beach,vid_aaaaaa1,10,12\n")
    with pytest.raises(InputError, match=r"line 2: clip vid_aaaaaa1 10-12 is already in the store"):
        ingest([again], None, db=tiny_store)
    a = tmp_path / "HVU_Val_a.csv"
    b = tmp_path / "HVU_Val_b.csv"
    a.write_text("Tags,youtube_id,time_start,time_end\nsurfing,new1,0,2\n")
    b.write_text("Tags,youtube_id,time_start,time_end\nskiing,new1,0,2\n")
    with pytest.raises(
        InputError, match=r"duplicate clip new1 0-2 at .*HVU_Val_a\.csv, line 2 and .*HVU_Val_b\.csv, line 2"
    ):
        ingest([a, b], None, db=tiny_store)


def test_bad_category_file_leaves_no_store_behind(tmp_path):
    db = tmp_path / "new.duckdb"
    with pytest.raises(InputError, match=r'bad_category\.csv, line 3: category "place" is not one of'):
        ingest([FIXTURES / "HVU_Val_tiny.csv"], BAD / "bad_category.csv", db=db)
    assert not db.exists()


def test_db_that_is_not_duckdb_is_refused(tmp_path):
    db = tmp_path / "not_a_store.db"
    shutil.copy(BAD / "not_a_store.db", db)
    before = db.read_bytes()
    with pytest.raises(StoreError, match="cannot open store"):
        ingest([FIXTURES / "HVU_Val_tiny.csv"], FIXTURES / "categories.csv", db=db)
    assert db.read_bytes() == before
