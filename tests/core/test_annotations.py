"""Necessity annotation: durable answers, the prompt, exchange between stores, agreement, NCA vs people."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from hvuaudit.annotations import (
    annotation_progress,
    annotation_stats,
    build_queue,
    cohen_kappa,
    export_answers,
    fleiss_kappa,
    import_answers,
    record_answer,
)
from hvuaudit.cli import cli
from hvuaudit.errors import InputError, StoreError
from hvuaudit.store import open_store


def _answers(db) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT annotator, action, tag, answer FROM annotations ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_queue_orders_and_skips_answered(tiny_store):
    with open_store(tiny_store, read_only=False) as con:
        everything = build_queue(con, category="scene")
        assert (
            everything.height == 6
        )  # surfing: beach, ocean, mountain; skiing: mountain; dancing: stage, beach
        frequent = build_queue(con, category="scene", order="frequency")
        assert frequent.row(0, named=True)["n_both"] == 3  # skiing / mountain
        r1 = build_queue(con, category="scene", order="random", seed=3)
        r2 = build_queue(con, category="scene", order="random", seed=3)
        assert r1.equals(r2)
        # nca order: the pair whose ratio is closest to the threshold first (dancing/stage: 0.5 vs 0.5)
        assert build_queue(con, category="scene", threshold=0.5).row(0, named=True)["tag"] == "stage"
        # the queue's ratio is counted in the clip mode asked for (clip 4 has no scene tag)
        ratios = {
            mode: {
                (r["action"], r["tag"]): r["ratio"]
                for r in build_queue(con, category="scene", clips=mode).rows(named=True)
            }
            for mode in ("all", "labelled")
        }
        assert ratios["all"][("surfing", "beach")] == 1.5 and ratios["labelled"][("surfing", "beach")] == 1.0
        record_answer(
            con, annotator="ann", action="dancing", tag="stage", category="scene", answer="not_necessary"
        )
        left = build_queue(con, category="scene", annotator="ann", threshold=0.5)
        assert ("dancing", "stage") not in set(zip(left["action"], left["tag"], strict=True))
        assert annotation_progress(con, annotator="ann", category="scene") == (1, 6)
        assert (
            build_queue(con, category="scene", min_cooccurrence=2).height == 3
        )  # skiing/mountain, surfing/beach, dancing/stage


def test_changing_an_answer_keeps_history(tiny_store):
    with open_store(tiny_store, read_only=False) as con:
        record_answer(
            con, annotator="ann", action="surfing", tag="beach", category="scene", answer="necessary"
        )
        record_answer(
            con, annotator="ann", action="surfing", tag="beach", category="scene", answer="not_necessary"
        )
        assert con.execute("SELECT answer FROM annotations").fetchall() == [("not_necessary",)]
        assert con.execute("SELECT answer FROM annotation_events ORDER BY answered_at").fetchall() == [
            ("necessary",),
            ("not_necessary",),
        ]
        with pytest.raises(InputError, match="unknown answer 'maybe'"):
            record_answer(
                con, annotator="ann", action="surfing", tag="beach", category="scene", answer="maybe"
            )
        with pytest.raises(InputError, match="annotator name is empty"):
            record_answer(
                con, annotator="  ", action="surfing", tag="beach", category="scene", answer="unsure"
            )
        with pytest.raises(InputError, match="'surfboard' is not a scene tag"):
            record_answer(
                con, annotator="ann", action="surfing", tag="surfboard", category="scene", answer="unsure"
            )


def test_scripted_prompt_session_with_back_help_and_quit(tiny_store):
    # y, n, ? (help, same pair again), u, b (back to the 'u' pair), y (replaces it), q
    result = CliRunner().invoke(
        cli,
        [
            "annotate",
            "run",
            "--annotator",
            "ann",
            "--category",
            "scene",
            "--order",
            "frequency",
            "--db",
            str(tiny_store),
        ],
        input="y\nn\n?\nu\nb\ny\nq\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("saved:") == 4
    assert "back to" in result.output and "stopped: 3/6 answered" in result.output
    assert "Necessary is not the same as sufficient" in result.output
    # frequency order: skiing/mountain (3), then surfing/beach (2) and dancing/stage (2) by name: dancing
    # first
    assert _answers(tiny_store) == [
        ("ann", "dancing", "stage", "not_necessary"),
        ("ann", "skiing", "mountain", "necessary"),
        ("ann", "surfing", "beach", "necessary"),
    ]
    again = CliRunner().invoke(
        cli,
        [
            "annotate",
            "run",
            "--annotator",
            "ann",
            "--category",
            "scene",
            "--order",
            "frequency",
            "--db",
            str(tiny_store),
        ],
        input="q\n",
    )
    assert "[4/6]" in again.output  # resumes where it stopped


def test_empty_annotator_is_refused(tiny_store):
    result = CliRunner().invoke(
        cli, ["annotate", "run", "--annotator", " ", "--db", str(tiny_store)], input="y\n"
    )
    assert result.exit_code == 3 and "annotator name is empty" in result.stderr


def test_killed_session_loses_no_answer(tiny_store):
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from hvuaudit.cli import main; main()",
            "annotate",
            "run",
            "--annotator",
            "kill",
            "--category",
            "object",
            "--db",
            str(tiny_store),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    saved = 0
    deadline = time.monotonic() + 60
    process.stdin.write("y\nn\nu\n")
    process.stdin.flush()
    while saved < 3 and time.monotonic() < deadline:
        line = process.stdout.readline()
        saved += line.count("saved:")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert saved == 3
    rows = _answers(tiny_store)
    assert [r[3] for r in sorted(rows, key=lambda r: r[1:3])] and len(rows) == 3
    assert sorted(r[3] for r in rows) == ["necessary", "not_necessary", "unsure"]


def test_export_import_round_trip_idempotent_and_conflicts(tiny_store, tmp_path):
    other = tmp_path / "other.duckdb"
    other.write_bytes(tiny_store.read_bytes())
    with open_store(tiny_store, read_only=False) as con:
        record_answer(
            con,
            annotator="a",
            action="surfing",
            tag="beach",
            category="scene",
            answer="necessary",
            answered_at=datetime(2026, 1, 1, 10),
        )
        record_answer(
            con,
            annotator="a",
            action="skiing",
            tag="mountain",
            category="scene",
            answer="necessary",
            answered_at=datetime(2026, 1, 1, 11),
        )
        assert export_answers(con, tmp_path / "a.csv", annotator="a") == 2
        export_answers(con, tmp_path / "a.jsonl", annotator="a")
    with open_store(other, read_only=False) as con:
        record_answer(
            con,
            annotator="a",
            action="surfing",
            tag="beach",
            category="scene",
            answer="not_necessary",
            answered_at=datetime(2026, 1, 2, 9),
        )  # newer, on the other machine
        record_answer(
            con,
            annotator="a",
            action="skiing",
            tag="mountain",
            category="scene",
            answer="unsure",
            answered_at=datetime(2025, 12, 31),
        )  # older
        first = import_answers(con, [tmp_path / "a.csv"])
        assert (first.added, first.updated, first.kept, first.unchanged) == (0, 1, 1, 0)
        assert {(c["action"], c["outcome"]) for c in first.conflicts} == {
            ("skiing", "updated"),
            ("surfing", "kept"),
        }
        second = import_answers(con, [tmp_path / "a.csv", tmp_path / "a.jsonl"])
        assert (second.added, second.updated) == (0, 0) and second.unchanged == 1
        events = con.execute("SELECT count(*) FROM annotation_events").fetchall()[0][0]
        import_answers(con, [tmp_path / "a.jsonl"])
        assert con.execute("SELECT count(*) FROM annotation_events").fetchall()[0][0] == events  # idempotent
    assert _answers(other) == [
        ("a", "skiing", "mountain", "necessary"),
        ("a", "surfing", "beach", "not_necessary"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("annotator,action,tag,answer\na,surfing,beach,necessary\n", "line 1: missing column(s) category"),
        (
            "annotator,action,tag,category,answer,note,answered_at,source\na,surfing,beach,scene,maybe,,2026-01-01T00:00:00,x\n",
            "line 2: unknown answer 'maybe'",
        ),
        (
            "annotator,action,tag,category,answer,note,answered_at,source\na,flying,beach,scene,necessary,,2026-01-01T00:00:00,x\n",
            "line 2: 'flying' is not an action in this store",
        ),
        (
            "annotator,action,tag,category,answer,note,answered_at,source\n,surfing,beach,scene,necessary,,2026-01-01T00:00:00,x\n",
            "line 2: the annotator is empty",
        ),
    ],
)
def test_bad_import_files_import_nothing(tiny_store, tmp_path, content, message):
    good = tmp_path / "good.csv"
    good.write_text(
        "annotator,action,tag,category,answer,note,answered_at,source\n"
        "b,skiing,mountain,scene,necessary,,2026-01-01T00:00:00,x\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    result = CliRunner().invoke(cli, ["annotate", "import", str(good), str(bad), "--db", str(tiny_store)])
    assert result.exit_code == 3 and message in result.stderr, result.output
    assert _answers(tiny_store) == []  # the good file was not half-imported either


def test_kappa_against_hand_computed_and_statsmodels():
    a = ["y", "y", "n", "n", "y", "n", "y", "y"]
    b = ["y", "n", "n", "n", "y", "n", "y", "n"]
    # hand: observed 6/8 = 0.75; p_yes = (5/8)(3/8) , p_no = (3/8)(5/8) -> expected 30/64; κ =
    # (0.75-0.46875)/(0.53125)
    assert cohen_kappa(a, b) == pytest.approx((0.75 - 30 / 64) / (1 - 30 / 64))
    table = np.array([[3, 2], [0, 3]])
    assert cohen_kappa(a, b) == pytest.approx(sm_cohens_kappa(table).kappa)
    rng = np.random.default_rng(0)
    counts = rng.multinomial(4, [0.5, 0.3, 0.2], size=30)
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss_kappa(counts, method="fleiss"))
    # classic example: perfect agreement → 1
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    assert cohen_kappa([], []) is None


def test_stats_agreement_and_nca_versus_people(tiny_store):
    plan = {  # (action, tag): answers of annotators a, b, c
        ("skiing", "mountain"): ("necessary", "necessary", "necessary"),
        ("dancing", "stage"): ("not_necessary", "not_necessary", "necessary"),
        ("surfing", "beach"): ("not_necessary", "not_necessary", "not_necessary"),
        ("surfing", "ocean"): ("necessary", "necessary", None),
    }
    with open_store(tiny_store, read_only=False) as con:
        for (action, tag), answers in plan.items():
            for annotator, answer in zip("abc", answers, strict=True):
                if answer:
                    record_answer(
                        con, annotator=annotator, action=action, tag=tag, category="scene", answer=answer
                    )
    with open_store(tiny_store) as con:
        tables = annotation_stats(con, ["scene"], threshold=0.5)
    agreement = tables["agreement"].row(0, named=True)
    assert (agreement["annotators"], agreement["items_any"], agreement["items_all"]) == (3, 4, 3)
    counts = np.array([[3, 0, 0], [1, 2, 0], [0, 3, 0]])  # necessary / not / unsure over the 3 complete items
    assert agreement["fleiss_kappa"] == pytest.approx(round(sm_fleiss_kappa(counts), 4))
    pairwise = {(r["annotator_a"], r["annotator_b"]): r for r in tables["pairwise"].iter_rows(named=True)}
    assert pairwise[("a", "b")]["items"] == 4 and pairwise[("a", "b")]["cohen_kappa"] == 1.0
    per = {r["annotator"]: r for r in tables["per_annotator"].iter_rows(named=True)}
    # a: actions skiing, dancing, surfing answered; skiing and surfing (ocean) judged to need a scene
    assert per["a"]["actions"] == 3 and per["a"]["actions_requiring"] == 2
    assert per["c"]["pct_actions_requiring"] == pytest.approx(66.67)
    majority = {(r["action"], r["tag"]): r["majority"] for r in tables["majority"].iter_rows(named=True)}
    assert majority[("dancing", "stage")] == "not_necessary"
    # NCA at 0.5: skiing/mountain (1/3) and dancing/stage (0.5) necessary; surfing/beach (1.5), surfing/ocean
    # (4) not.
    confusion = {
        (r["human_necessary"], r["nca_necessary"]): r["pairs"]
        for r in tables["nca_vs_people"].iter_rows(named=True)
    }
    assert confusion == {(True, True): 1, (False, True): 1, (False, False): 1, (True, False): 1}
    scores = tables["nca_scores"].row(0, named=True)
    assert (scores["precision"], scores["recall"]) == (0.5, 0.5)
    assert tables["disagreements"]["action"].to_list()[0] == "surfing"  # ocean: ratio 4, farthest from 0.5
    # Clip 4 (surfing) carries no scene tag: among labelled clips surfing/beach is 2 of 4, ratio 1.0,
    # necessary at 1.0; over all clips it is 2 of 5, ratio 1.5, not necessary.
    with open_store(tiny_store) as con:
        by_mode = {m: annotation_stats(con, ["scene"], threshold=1.0, clips=m) for m in ("all", "labelled")}
    for mode, human_no_nca_yes in (("all", 1), ("labelled", 2)):
        confusion = {
            (r["human_necessary"], r["nca_necessary"]): r["pairs"]
            for r in by_mode[mode]["nca_vs_people"].iter_rows(named=True)
        }
        assert confusion[(False, True)] == human_no_nca_yes, mode
        assert by_mode[mode]["nca_scores"].row(0, named=True)["clips"] == mode


def test_stats_with_one_annotator_says_not_applicable(tiny_store):
    with open_store(tiny_store, read_only=False) as con:
        record_answer(
            con, annotator="solo", action="skiing", tag="mountain", category="scene", answer="necessary"
        )
    result = CliRunner().invoke(
        cli, ["annotate", "stats", "--category", "scene", "--format", "json", "--db", str(tiny_store)]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["agreement"][0]["fleiss_kappa"] is None
    assert "not applicable" in body["agreement"][0]["note"]
    assert body["pairwise"] == []


def test_stats_without_answers(tiny_store):
    with open_store(tiny_store) as con, pytest.raises(StoreError, match="no answers"):
        annotation_stats(con, ["scene"])
