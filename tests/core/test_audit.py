"""`hvuaudit audit --html`: one self-contained page whose numbers are the CLI's (issue #21).

The browser test opens the page in Debian's headless Chromium (.ci/run installs it; skipped with a
message when it is absent), keeps its screenshot, and checks that every figure decoded, that the
page logged nothing to the console and that its key numbers are on it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hvuaudit.cli import cli
from hvuaudit.output import format_cell

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _page(db: Path, out: Path, *extra) -> str:
    result = invoke("audit", "--html", out, "--db", db, "--resamples", "200", *extra)
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def _figures(page: str) -> list[np.ndarray]:
    from matplotlib.image import imread

    return [
        imread(io.BytesIO(base64.b64decode(data)), format="png")
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    ]


@pytest.fixture(scope="module")
def real_page(real_store, tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("audit") / "audit.html"
    return _page(real_store, out), out


def test_the_page_carries_the_numbers_of_the_commands(real_store, real_page):
    page, _ = real_page
    stats = json.loads(invoke("stats", "--format", "json", "--db", real_store).stdout)
    clips = sum(row["clips"] for row in stats["subsets"])
    assert f"{clips:,}" in page and "31,171" in page
    roles = json.loads(
        invoke("nca", "roles", "--format", "json", "--db", real_store, "--resamples", "200").stdout
    )
    for category, role in roles["roles"].items():  # labelled clips, the default mode
        assert f"<dt>{category} (labelled clips)</dt><dd>{role}, band " in page
    for section in ("store", "tags", "cooccurrence", "shortcuts", "nca", "people", "splits", "videos"):
        assert f'<section id="{section}">' in page
    top = invoke("sql", "scene_predictable_actions", "--format", "json", "--db", real_store).stdout
    first = json.loads(top)[0]
    assert f"<td>{first['action']}</td><td>{first['top_scene']}</td>" in page


def test_sections_with_nothing_to_show_say_so_and_how_to_fill_them(real_page):
    page, _ = real_page  # a store with no answers, no saved split and no scanned videos
    for section, fill in (
        ("people", "hvuaudit annotate run"),
        ("splits", "hvuaudit split --variant 2"),
        ("videos", "hvuaudit videos scan"),
    ):
        empty = re.search(rf'data-empty="{section}">(.*?)</p>', page, flags=re.S)
        assert empty is not None and fill in empty.group(1), section


def test_every_figure_is_inline_and_drawn_and_nothing_is_fetched(real_page):
    page, _ = real_page
    figures = _figures(page)
    assert len(figures) == 6  # tags, two heatmaps, shortcuts, Fig. 2b/c, Fig. 2d
    for image in figures:
        assert image.shape[0] > 100 and image.shape[1] > 100 and float(image[..., :3].std()) > 0.02
    # self-contained: no stylesheet, script or image from elsewhere
    assert not re.search(r'(src|href)="(?!#|data:)', page) and "<link" not in page


def test_a_store_with_a_split_and_answers_fills_those_sections(tiny_store, tmp_path):
    split = invoke("split", "--variant", "2", "--min-videos", "1", "--select-fraction", "0", "--val-fraction",
                   "0.5", "--out", tmp_path / "si2", "--db", tiny_store)  # fmt: skip
    assert split.exit_code == 0, split.output
    answers = tmp_path / "answers.csv"
    answers.write_text(
        "annotator,action,tag,category,answer,note,answered_at,source\n"
        "ann,skiing,mountain,scene,necessary,,2026-01-01T00:00:00,test\n"
        "bob,skiing,mountain,scene,necessary,,2026-01-01T00:00:00,test\n"
    )
    imported = invoke("annotate", "import", answers, "--db", tiny_store)
    assert imported.exit_code == 0, imported.output
    page = _page(tiny_store, tmp_path / "audit.html")
    assert 'data-empty="splits"' not in page and "<td>si2</td>" in page
    manifest = json.loads((tmp_path / "si2" / "manifest.json").read_text())
    leakage = manifest["counts"]["any_tag_leakage"]["share"]
    row = re.search(r"<tr><td>si2</td>.*?</tr>", page, flags=re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
    counts = manifest["counts"]  # the page's guarantees are the manifest's report, as printed
    expected = [counts["scene_only_baseline"], counts["scene_only_baseline_all_tags"], leakage]
    assert cells[5:8] == [format_cell(value, 4) for value in expected]
    assert 'data-empty="people"' not in page and "Fleiss" in page


def test_bad_outputs_and_stores_are_refused_and_nothing_is_lost(tiny_store, tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("my notes")
    refused = invoke("audit", "--html", mine, "--db", tiny_store)
    assert refused.exit_code == 5 and "--force" in refused.output and mine.read_text() == "my notes"
    assert invoke("audit", "--html", mine, "--db", tiny_store, "--force").exit_code == 0
    assert "HVU scene-bias audit" in mine.read_text()
    onto_store = invoke("audit", "--html", tiny_store, "--db", tiny_store, "--force")
    assert onto_store.exit_code == 5 and tiny_store.stat().st_size > 0
    empty = tmp_path / "empty.duckdb"
    from hvuaudit.store import open_store

    with open_store(empty, read_only=False, create=True):  # a store with the schema and no clips
        pass
    nothing = invoke("audit", "--html", tmp_path / "a.html", "--db", empty)
    assert nothing.exit_code == 4 and not (tmp_path / "a.html").exists()


# --------------------------------------------------------------------------- in a real browser
def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    return found


def _artefacts(tmp_path: Path) -> Path:
    """Where the browser test keeps its screenshot: $HVUAUDIT_TEST_ARTIFACTS, else the test's folder."""
    folder = Path(os.environ.get("HVUAUDIT_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_page_renders_in_a_real_browser(real_page, tmp_path):
    from matplotlib.image import imread

    chromium = _chromium()
    page, path = real_page
    profile = ("--user-data-dir=" + str(tmp_path / "profile"),)
    shot = _artefacts(tmp_path) / "audit_report.png"
    run = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *profile, "--window-size=1200,2600", f"--screenshot={shot}",
         path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2600, 1200) and float(pixels.std()) > 0.05  # not a blank page
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *profile, "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert (
        'data-figures="6"' in dom.stdout and 'data-broken-figures="0"' in dom.stdout
    )  # every figure decoded
    assert "CONSOLE" not in dom.stderr, [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert "31,171" in dom.stdout and "Necessary Condition Analysis" in dom.stdout


def _store_of(tmp_path: Path, rows: list[str], categories: list[str]) -> Path:
    (tmp_path / "HVU_Val_odd.csv").write_text(
        "Tags,youtube_id,time_start,time_end\n" + "\n".join(rows) + "\n"
    )
    (tmp_path / "cats.csv").write_text("Tag,Category\n" + "\n".join(categories) + "\n")
    db = tmp_path / "odd.duckdb"
    result = invoke("ingest", tmp_path / "HVU_Val_odd.csv", "--categories", tmp_path / "cats.csv", "--db", db)
    assert result.exit_code == 0, result.output
    return db


def test_a_store_the_nca_cannot_count_and_tags_with_dollars_still_get_their_page(tmp_path):
    # no object tag at all, and tag names that matplotlib would read as formulas
    rows = [f"$x^$ party|it's $5 or $6|<b>stage</b>,vid{i:04d},{i},{i + 2}" for i in range(12)]
    db = _store_of(tmp_path, rows, ["$x^$ party,action", "it's $5 or $6,scene", "<b>stage</b>,scene"])
    page = _page(db, tmp_path / "audit.html")
    nca = page.split('<section id="nca">', 1)[1].split("</section>", 1)[0]
    assert "no clip carries an object tag" in nca  # said in its section, the others drawn
    assert "Labelled clips not counted" in nca and "<figcaption>Fig. 2d</figcaption>" in nca  # all clips
    assert "$x^$ party" in page and "it&#39;s $5 or $6" in page and "<b>stage</b>" not in page
    assert len(_figures(page)) >= 3


def test_the_store_s_own_annotation_file_and_odd_paths_are_refused(tmp_path):
    db = _store_of(tmp_path, ["surfing|beach,vid0001,1,3"], ["surfing,action", "beach,scene"])
    source = tmp_path / "HVU_Val_odd.csv"
    before = source.read_text()
    onto_source = invoke("audit", "--html", source, "--db", db, "--force")
    assert onto_source.exit_code == 5 and source.read_text() == before
    (tmp_path / "plain.txt").write_text("x")
    under_a_file = invoke("audit", "--html", tmp_path / "plain.txt" / "a.html", "--db", db)
    assert under_a_file.exit_code == 3 and "is not a folder" in under_a_file.output
    folder = invoke("audit", "--html", tmp_path, "--db", db)
    assert folder.exit_code == 3 and "is a folder" in folder.output


# --------------------------------------------------------------------------- --pdf
def test_pdf_is_the_page_printed_by_chromium_beside_the_html(tiny_store, tmp_path):
    _chromium()
    html, pdf = tmp_path / "audit.html", tmp_path / "audit.pdf"
    result = invoke("audit", "--html", html, "--pdf", pdf, "--db", tiny_store)
    assert result.exit_code == 0, result.output
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page\b", data)) >= 1
    assert html.read_text().lower().startswith("<!doctype html>")
    again = invoke("audit", "--pdf", pdf, "--db", tiny_store)  # an existing PDF is kept
    assert again.exit_code == 5 and pdf.read_bytes() == data
    only = invoke("audit", "--pdf", tmp_path / "only.pdf", "--db", tiny_store)  # --pdf alone
    assert only.exit_code == 0 and (tmp_path / "only.pdf").read_bytes()[:5] == b"%PDF-"
    assert not list(tmp_path.glob("*.hvuaudit-tmp-*"))


def test_pdf_without_a_browser_or_with_a_failing_one_says_so_and_writes_nothing(
    tiny_store, tmp_path, monkeypatch
):
    pdf = tmp_path / "audit.pdf"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("HVUAUDIT_CHROMIUM", raising=False)
    missing = invoke("audit", "--pdf", pdf, "--db", tiny_store)
    assert missing.exit_code == 3 and "Chromium" in missing.stderr and "apt-get install" in missing.stderr
    failing = tmp_path / "bin" / "chromium"
    failing.parent.mkdir()
    failing.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("HVUAUDIT_CHROMIUM", str(failing))
    broken = invoke("audit", "--html", tmp_path / "a.html", "--pdf", pdf, "--db", tiny_store)
    assert (
        broken.exit_code == 3
        and "could not print" in broken.stderr
        and "cannot open display" in broken.stderr
    )
    assert not pdf.exists() and not list(tmp_path.glob("*.hvuaudit-tmp-*"))
    assert invoke("audit", "--db", tiny_store).exit_code == 3  # neither --html nor --pdf
    assert invoke("audit", "--pdf", tmp_path / "a.txt", "--db", tiny_store).exit_code == 3
    store_bytes = tiny_store.read_bytes()
    assert invoke("audit", "--pdf", tiny_store, "--force", "--db", tiny_store).exit_code == 5
    assert tiny_store.read_bytes() == store_bytes


def test_pdf_refuses_a_browser_error_page_a_hung_browser_and_one_path_for_both(
    tiny_store, tmp_path, monkeypatch
):
    from hvuaudit import audit
    from hvuaudit.errors import InputError

    _chromium()
    with pytest.raises(InputError, match="printed another page"):  # Chromium's page for a missing file
        audit.print_pdf(tmp_path / "missing.html", tmp_path / "ghost.pdf")
    assert not (tmp_path / "ghost.pdf").exists()
    # a browser that hangs, with a helper process of its own: both are killed, nothing is written
    hung = tmp_path / "hung-chromium"
    helper = tmp_path / "helper.pid"
    hung.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {helper}\nsleep 60\n")
    hung.chmod(0o755)
    monkeypatch.setenv("HVUAUDIT_CHROMIUM", str(hung))
    monkeypatch.setattr(audit, "PRINT_TIMEOUT_S", 1)
    page = tmp_path / "page.html"
    page.write_text("<title>HVU scene-bias audit</title>")
    with pytest.raises(InputError, match="did not print"):
        audit.print_pdf(page, tmp_path / "hung.pdf")
    pid = int(helper.read_text())
    for _ in range(50):  # the kill is delivered at once; the zombie is reaped by its parent's end
        if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            break
        import time

        time.sleep(0.05)
    else:
        raise AssertionError("the hung browser's helper outlived it")
    assert not (tmp_path / "hung.pdf").exists()
    monkeypatch.setenv("HVUAUDIT_CHROMIUM", str(tmp_path / "no-such-browser"))
    named = invoke("audit", "--pdf", tmp_path / "a.pdf", "--db", tiny_store)
    assert named.exit_code == 3 and "HVUAUDIT_CHROMIUM" in named.stderr
    monkeypatch.delenv("HVUAUDIT_CHROMIUM")
    same = invoke("audit", "--html", tmp_path / "x.pdf", "--pdf", tmp_path / "x.pdf", "--db", tiny_store)
    assert same.exit_code == 5 and not (tmp_path / "x.pdf").exists()
