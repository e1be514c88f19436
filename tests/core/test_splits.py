"""Scene-Invariant and default splits: exact assignments on a hand-built store, invariants on real HVU."""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvuaudit.errors import ConflictError, InputError, StoreError
from hvuaudit.ingest import ingest
from hvuaudit.splits import SplitParams, build_split, export_split, verify_split
from hvuaudit.store import open_store
from hvucontracts.splitfolder import clip_filename, load_split, resolve_name_template

CATEGORIES = """Tag,Category
run,action
swim,action
jump,action
sing,action
park,scene
street,scene
beach,scene
pool,scene
sea,scene
lake,scene
stage,scene
shoe,object
goggles,object
"""


def _rows(spec: list[tuple[str, int]]) -> list[str]:
    return [tags for tags, count in spec for _ in range(count)]


@pytest.fixture
def split_store(tmp_path):
    """run: park×5 street×3 beach×2 (+1 without scene); swim: pool×4 sea×2 lake×1 + one clip with pool|lake;
    jump: 3 clips (below --min-videos 5); sing: 6 clips, all on stage (a single pair);
    one clip without action."""
    tags = _rows(
        [
            ("run|park|shoe", 5),
            ("run|street|shoe", 3),
            ("run|beach", 2),
            ("run|shoe", 1),
            ("swim|pool|goggles", 4),
            ("swim|sea", 2),
            ("swim|lake", 1),
            ("swim|pool|lake", 1),
            ("jump|park", 3),
            ("sing|stage", 6),
            ("park", 1),
        ]
    )
    lines = ["Tags,youtube_id,time_start,time_end"] + [
        f"{t},video{i:03d},{i},{i + 2}" for i, t in enumerate(tags)
    ]
    (tmp_path / "HVU_Val_split.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "cats.csv").write_text(CATEGORIES)
    db = tmp_path / "split.duckdb"
    ingest([tmp_path / "HVU_Val_split.csv"], tmp_path / "cats.csv", db=db)
    return db


def _pairs(frame: pl.DataFrame) -> dict[tuple[str, str], int]:
    return {(a, s): n for a, s, n in frame.group_by("action", "scene").len().iter_rows()}


def _training_side(result) -> pl.DataFrame:
    """What the split rules placed in training: train.csv and the selection set held out of it."""
    selected = [] if result.select is None else [result.select]
    return pl.concat([result.train, *selected])


def test_si1_exact_assignment(split_store):
    with open_store(split_store) as con:
        result = build_split(con, SplitParams(variant="1", min_videos=5, val_fraction=0.2))
    assert _pairs(result.val) == {("run", "beach"): 2, ("swim", "lake"): 1}
    # round(0.1 × 8) = 1 run clip and round(0.1 × 7) = 1 swim clip are held out for selection
    assert result.select["action"].sort().to_list() == ["run", "swim"]
    assert set(_pairs(result.select)) <= set(_pairs(result.train))
    assert _pairs(_training_side(result)) == {
        ("run", "park"): 5,
        ("run", "street"): 3,
        ("swim", "pool"): 5,
        ("swim", "sea"): 2,
    }
    # The pool|lake clip takes pool: the most frequent scene of swim.
    mixed = _training_side(result).filter(pl.col("scenes") == "pool|lake")
    assert mixed["scene"].to_list() == ["pool"]
    left = result.report["left_out"]
    assert (
        left["no_action"],
        left["no_scene"],
        left["below_min_videos"],
        left["single_pair_actions"],
        left["single_pair_clips"],
    ) == (1, 1, 3, 1, 6)
    assert result.labels == {
        "action": ["run", "swim"],
        "scene": ["beach", "lake", "park", "pool", "sea", "street"],
        "object": ["goggles", "shoe"],
    }


def test_si2_exact_assignment(split_store):
    with open_store(split_store) as con:
        result = build_split(con, SplitParams(variant="2", min_videos=5, val_fraction=0.2))
    # swim pairs: pool 4, lake 2 (incl. the pool|lake clip: lake is rarer within swim), sea 2;
    # lake and sea tie on size and popularity, so the name decides: lake goes to train first.
    assert _pairs(_training_side(result)) == {
        ("run", "park"): 5,
        ("run", "street"): 3,
        ("swim", "pool"): 4,
        ("swim", "lake"): 2,
    }
    assert _pairs(result.val) == {("run", "beach"): 2, ("swim", "sea"): 2}
    assert result.report["scene_only_baseline"] == 0.0
    assert result.report["train"] == {"clips": 12, "actions": 2, "pairs": 4}
    assert result.report["select"] == {
        "fraction": 0.1, "seed": 0, "clips": 2, "actions": 2, "pairs": 2, "actions_without_clips": 0
    }  # fmt: skip


def test_primary_action_rules(tiny_store, tmp_path):
    clip = "vid_aaaaaa1_40.0_42.0"  # surfing|skiing|mountain|ski|surfboard; skiing is rarer (4 vs 5 clips)
    override = tmp_path / "labels.csv"
    override.write_text(
        "youtube_id,time_start,time_end,action\nvid_aaaaaa1,40,42,dancing\nvid_cccccc1,100,102,dancing\n"
    )
    chosen = {}
    with open_store(tiny_store) as con:
        for rule in ("rarest", "first", str(override)):
            params = SplitParams(
                variant="1", min_videos=1, val_fraction=0.5, primary_action=rule, select_fraction=0
            )
            build_split(con, params)
            # split_clips is step 1's table: every candidate clip with its primary action
            chosen[rule] = dict(con.execute("SELECT clip_id, action FROM split_clips").fetchall())
        all_actions = dict(
            con.execute("SELECT clip_id, array_to_string(action_list, '|') FROM split_clips").fetchall()
        )
    assert chosen["rarest"][clip] == "skiing"
    # the split rows keep every action tag, in the order of the clip's Tags, for the any-of accuracy
    assert all_actions[clip] == "surfing|skiing"
    assert chosen["first"][clip] == "surfing"
    assert chosen["first"]["vid_bbbbbb1_1.0_3.0"] == chosen["rarest"]["vid_bbbbbb1_1.0_3.0"] == "skiing"
    # with a file, only the listed clips get an action; the others are left out as 'no action'
    assert chosen[str(override)][clip] == "dancing"
    assert sum(a is None for a in chosen[str(override)].values()) == 10


def test_default_split_uses_store_subsets(tmp_path):
    for name, rows in (
        ("HVU_Train_x.csv", ["run|park,a,0,2", "run|street,b,0,2", "run,c,0,2", "swim|pool,g,0,2"]),
        ("HVU_Val_x.csv", ["run|park,d,0,2", "run,e,0,2", "swim|park,f,0,2"]),
    ):
        (tmp_path / name).write_text("Tags,youtube_id,time_start,time_end\n" + "\n".join(rows) + "\n")
    (tmp_path / "cats.csv").write_text(CATEGORIES)
    db = tmp_path / "d.duckdb"
    ingest([tmp_path / "HVU_Train_x.csv", tmp_path / "HVU_Val_x.csv"], tmp_path / "cats.csv", db=db)
    with open_store(db) as con:
        # round(0.1 × 3) is 0 for every action; and at 0.5 every training pair has one clip, none to spare
        with pytest.raises(InputError, match="is too small: it rounds to no clip"):
            build_split(con, SplitParams(variant="default", min_videos=1))
        with pytest.raises(InputError, match="selects no clip"):
            build_split(con, SplitParams(variant="default", min_videos=1, select_fraction=0.5))
        result = build_split(con, SplitParams(variant="default", min_videos=1, select_fraction=0))
    assert result.select is None
    assert result.train["youtube_id"].to_list() == ["a", "b", "c", "g"]
    assert sorted(result.val["youtube_id"]) == ["d", "e", "f"]
    assert result.val.filter(pl.col("youtube_id") == "e")["scene"].to_list() == [""]  # scene-less clips kept
    assert (
        result.report["scene_only_baseline"] == 0.5
    )  # over val clips with a scene: park -> run is right for d, wrong for f


def test_export_is_atomic_deterministic_and_saved(split_store, tmp_path):
    out = tmp_path / "out" / "si2"
    with open_store(split_store, read_only=False) as con:
        result = build_split(con, SplitParams(variant="2", min_videos=5))
        export_split(con, result, out)
        first = {p.name: p.read_bytes() for p in out.iterdir()}
        with pytest.raises(ConflictError, match="already exists"):
            export_split(con, result, out)
        export_split(con, build_split(con, SplitParams(variant="2", min_videos=5)), out, force=True)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == first
        saved = con.execute(
            "SELECT side, count(*) FROM split_members WHERE split = 'si2' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert saved == [("select", 2), ("train", 12), ("val", 4)]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    folder = load_split(out)
    manifest, train, labels = folder.manifest, folder.sets["train"], folder.labels
    assert manifest["format"] == "hvuaudit-split/1" and manifest["variant"] == "si2"
    assert manifest["params"]["min_videos"] == 5 and manifest["counts"]["left_out"]["no_action"] == 1
    assert manifest["source"]["sources"][0]["sha256"]
    assert list(train.columns) == [
        "clip_id",
        "youtube_id",
        "time_start",
        "time_end",
        "action",
        "scene",
        "scenes",
        "objects",
        "actions",  # every action tag of the clip
        "video",  # read as '' from a split of a store without scanned videos
        "video_whole",
    ]
    assert set(train["video"]) == {""} and "video" not in (out / "train.csv").read_text().splitlines()[0]
    assert labels["action"] == ["run", "swim"]


def test_verify_passes_and_catches_tampering(split_store, tmp_path):
    out = tmp_path / "si1"
    with open_store(split_store, read_only=False) as con:
        export_split(con, build_split(con, SplitParams(variant="1", min_videos=5)), out)
        assert verify_split(con, out).ok
    val = (out / "val.csv").read_text().splitlines()
    (out / "train.csv").write_text(
        (out / "train.csv").read_text() + val[1] + "\n"
    )  # leak a val clip into train
    with open_store(split_store) as con:
        report = verify_split(con, out)
    failed = {name for name, ok, _ in report.checks if not ok}
    assert not report.ok
    assert (
        "1. no (action, scene) pair on both sides" in failed
        and "4. every eligible clip exactly once" in failed
    )
    details = {name: detail for name, _, detail in report.checks}
    assert details["6. rebuilding gives byte-identical files"] == "train.csv differ"  # names the file changed


@pytest.mark.parametrize("variant", ["1", "2"])
def test_real_hvu_invariants(real_store, tmp_path, variant):
    out = tmp_path / f"si{variant}"
    db = tmp_path / "real.duckdb"
    db.write_bytes(real_store.read_bytes())
    with open_store(db, read_only=False) as con:
        result = build_split(con, SplitParams(variant=variant, min_videos=25))
        export_split(con, result, out)
        report = verify_split(con, out)
        several = con.execute(  # docs/evaluator.md: 63% of the clips with an action tag carry several
            "SELECT avg((count(*) > 1)::INT) OVER () FROM clip_tag_ids JOIN tags USING (tag_id) "
            "WHERE category = 'action' GROUP BY clip_key LIMIT 1"
        ).fetchone()[0]
    assert several == pytest.approx(0.63, abs=0.005)
    assert report.ok, report.checks
    assert result.report["scene_only_baseline"] == 0.0
    written = load_split(out).sets["val"]
    assert written.filter(~pl.col("actions").str.split("|").list.contains(pl.col("action"))).height == 0
    assert written.filter(pl.col("actions").str.contains("|", literal=True)).height > written.height / 2
    assert result.train.height > 5000 and result.val.height > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-videos", "1000"], "leaves no action (the largest action has 10 eligible clips)"),
        (["--val-fraction", "1.0"], "--val-fraction must be strictly between 0 and 1"),
        (["--val-fraction", "0"], "--val-fraction must be strictly between 0 and 1"),
        (["--variant", "3"], "unknown variant '3'"),
        (["--primary-action", "nowhere.csv"], "neither rarest, first nor an existing CSV file"),
        (["--variant", "default"], "needs both a 'train' and a 'val' subset"),
    ],
)
def test_bad_split_input_writes_nothing(split_store, tmp_path, args, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["split", "--min-videos", "5", *args, "--out", str(out), "--db", str(split_store)]
    )
    assert result.exit_code == 3, result.output
    assert message in result.stderr
    assert not out.exists()


def test_bad_primary_action_files(split_store, tmp_path):
    bad_columns = tmp_path / "bad.csv"
    bad_columns.write_text("video,start,end,label\nvideo000,0,2,run\n")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("youtube_id,time_start,time_end,action\nnot_a_clip,0,2,run\n")
    with open_store(split_store) as con:
        with pytest.raises(InputError, match=r"bad\.csv, line 1: missing column\(s\) youtube_id"):
            build_split(con, SplitParams(variant="1", min_videos=5, primary_action=str(bad_columns)))
        with pytest.raises(InputError, match=r"1 clip\(s\) are not in the store, e\.g\. not_a_clip 0-2"):
            build_split(con, SplitParams(variant="1", min_videos=5, primary_action=str(unknown)))


def test_empty_store_is_refused(tmp_path):
    db = tmp_path / "empty.duckdb"
    open_store(db, read_only=False, create=True).close()
    with open_store(db) as con, pytest.raises(StoreError, match="the store is empty"):
        build_split(con, SplitParams())


def test_split_cli_json_report_and_videos_entry(split_store, tmp_path):
    out = tmp_path / "si2"
    videos = tmp_path / "videos"
    videos.mkdir()
    result = CliRunner().invoke(
        cli,
        [
            "split",
            "--variant",
            "2",
            "--min-videos",
            "5",
            "--out",
            str(out),
            "--format",
            "json",
            "--videos",
            str(videos),
            "--name-template",
            "raw",
            "--db",
            str(split_store),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["val"] == {"clips": 4, "actions": 2, "pairs": 2}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["videos"] == {"dir": str(videos.resolve()), "name_template": "raw"}
    verify = CliRunner().invoke(cli, ["split", "verify", str(out), "--db", str(split_store)])
    assert verify.exit_code == 0 and verify.output.count("PASS") == 8
    listed = CliRunner().invoke(cli, ["split", "list", "--format", "json", "--db", str(split_store)])
    assert [r["split"] for r in json.loads(listed.output)] == ["si2"]


def test_compare_splits_query(split_store, tmp_path):
    with open_store(split_store, read_only=False) as con:
        export_split(con, build_split(con, SplitParams(variant="1", min_videos=5)), tmp_path / "si1")
        export_split(con, build_split(con, SplitParams(variant="2", min_videos=5)), tmp_path / "si2")
    result = CliRunner().invoke(
        cli,
        [
            "sql",
            "compare_splits",
            "--param",
            "a=si1",
            "--param",
            "b=si2",
            "--format",
            "json",
            "--db",
            str(split_store),
        ],
    )
    rows = {(r["side_in_a"], r["side_in_b"]): r["clips"] for r in json.loads(result.output)}
    assert sum(rows.values()) == 18 and rows[("val", "val")] == 2  # run/beach stays in val in both


def test_extra_eval_subsets_are_written_and_listed(split_store, tmp_path):
    extra = tmp_path / "uniform.csv"
    extra.write_text(
        "Tags,youtube_id,time_start,time_end\nswim|park,u1,0,2\nrun|pool|lake,u2,0,2\njump|sea,u3,0,2\n"
    )
    ingest([extra], None, db=split_store, subset="uniform")
    out = tmp_path / "si2"
    with open_store(split_store, read_only=False) as con:
        with pytest.raises(InputError, match="must not also feed the split"):
            build_split(con, SplitParams(variant="2", min_videos=5, eval_subsets=("uniform",)))
        result = build_split(
            con, SplitParams(variant="2", min_videos=5, subset="val", eval_subsets=("uniform",))
        )
        export_split(con, result, out)
        assert verify_split(con, out).ok
    rows = (out / "eval_uniform.csv").read_text().splitlines()
    # jump is not one of the split's actions, so u3 is left out; u2 takes its first scene, pool
    assert rows[1:] == [
        'u2_0.0_2.0,u2,0.0,2.0,run,pool,pool|lake,"",run',
        'u1_0.0_2.0,u1,0.0,2.0,swim,park,park,"",swim',
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["eval_sets"] == {"val": "val.csv", "uniform": "eval_uniform.csv"}
    assert manifest["params"]["eval_subsets"] == ["uniform"]


def test_export_does_not_need_the_connection_that_built_the_split(split_store, tmp_path):
    with open_store(split_store) as con:
        result = build_split(con, SplitParams(variant="1", min_videos=5))
    with open_store(split_store, read_only=False) as con:  # a fresh connection: no temp tables from the build
        export_split(con, result, tmp_path / "si1")
        assert con.execute("SELECT count(*) FROM split_members").fetchall() == [
            (result.train.height + result.val.height + result.select.height,)
        ]


def test_a_store_from_before_select_csv_takes_a_split_with_a_selection_set(split_store, tmp_path):
    """An older store's split_members allows the sides train and val only; a read-write open rebuilds it for
    three, keeping the splits it already holds."""
    with open_store(split_store, read_only=False) as con:
        export_split(
            con, build_split(con, SplitParams(variant="1", min_videos=5, select_fraction=0)), tmp_path / "old"
        )
        con.execute(
            "CREATE TABLE two_sides (split VARCHAR NOT NULL, clip_id VARCHAR NOT NULL, "
            "side VARCHAR NOT NULL CHECK (side IN ('train', 'val')), action VARCHAR NOT NULL, "
            "scene VARCHAR NOT NULL)"
        )
        con.execute("INSERT INTO two_sides SELECT * FROM split_members")
        con.execute("DROP TABLE split_members")
        con.execute("ALTER TABLE two_sides RENAME TO split_members")
    with open_store(split_store, read_only=False) as con:
        export_split(con, build_split(con, SplitParams(variant="2", min_videos=5)), tmp_path / "new")
        sides = con.execute(
            "SELECT split, side, count(*) FROM split_members GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    assert sides == [
        ("new", "select", 2), ("new", "train", 12), ("new", "val", 4), ("old", "train", 15), ("old", "val", 3)
    ]  # fmt: skip


def test_a_folder_the_exporter_writes_is_what_the_trainer_reads(split_store, tmp_path):
    """The one crossing of the two halves without the slow demo: hvuaudit writes, the trainer's loader
    reads."""
    pytest.importorskip("torch")
    from tests.trainer_fixtures import write_clip
    from trainer.dataset import ClipDataset, ClipSettings
    from trainer.videos import build_table, preflight, resolve_videos_dir

    videos = tmp_path / "videos"
    with open_store(split_store, read_only=False) as con:
        result = build_split(con, SplitParams(variant="2", min_videos=5, videos=str(videos)))
        rows = pl.concat([result.train, result.val, result.select]).to_dicts()
        videos.mkdir()
        for row in rows:
            write_clip(videos / clip_filename(row, "mmaction"), n_frames=4, size=16)
        out = export_split(con, result, tmp_path / "si2")
    folder = load_split(out)
    videos_dir, source = resolve_videos_dir(None, folder.manifest, env={})
    assert (videos_dir, source) == (videos, "the split manifest (videos.dir)")
    template = resolve_name_template(None, folder.manifest)
    tables = {
        name: build_table(folder.sets[name], folder.labels, videos_dir, template) for name in ("train", "val")
    }
    checks = preflight(tables, threads=1)
    assert {name: (c.n_usable, c.total) for name, c in checks.items()} == {
        "train": (result.train.height, result.train.height),
        "val": (result.val.height, result.val.height),
    }
    dataset = ClipDataset(
        tables["train"],
        n_scenes=len(folder.labels["scene"]),
        n_objects=len(folder.labels["object"]),
        settings=ClipSettings(clip_len=4, frame_stride=1, size=16),
        train=False,
    )
    sample = dataset[0]
    assert sample is not None and tuple(sample["video"].shape) == (3, 4, 16, 16)
    assert folder.labels["action"][int(sample["action"])] == result.train["action"][0]
