"""The shareable audit: one self-contained HTML page of a store's biases (``hvuaudit audit --html``).

Where it sits: on top of the audit core, beside the CLI and the TUI. Every number comes from the
function the CLI prints it with (``store_stats``, the bundled queries, ``nca_matrix``,
``nca_sweep``'s frames, ``recommend_roles``, ``annotation_stats``, ``list_splits`` and the split
manifests, ``videos coverage``), so the page and ``hvuaudit ... --format json`` agree. Figures
are drawn with matplotlib and embedded as PNG data URIs; the page is rendered by Jinja2 from
``hvuaudit/templates/audit.html.j2`` and fetches nothing when it is viewed. A section with
nothing to show says so and how to fill it.

Never imports torch, textual, the trainer, the evaluator or the demo.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from hvuaudit import __version__
from hvuaudit.categories import CLIP_MODES, DEFAULT_THRESHOLD, STUDY_CATEGORIES
from hvuaudit.cooccurrence import store_stats
from hvuaudit.errors import HvuauditError, StoreError
from hvuaudit.nca import (
    NoLabelledClipsError,
    figure_png,
    matrices_figure,
    nca_matrix,
    necessity_frames,
    parse_thresholds,
    sweep_figure,
    sweep_rows,
)
from hvuaudit.output import format_cell
from hvuaudit.roles import BootstrapSpec, recommend_roles, roles_tables, share_differences
from hvuaudit.store import require_clips, run_query, store_path, store_sources

SWEEP_THRESHOLDS = "0:1:0.05"  # `nca sweep`'s default grid
HEATMAP_ACTIONS = 20
HEATMAP_TAGS = 20
SHORTCUTS = 20
TABLE_ROWS = 40  # longer tables are cut on the page (the CLI gives them whole)


@dataclass
class Figure:
    title: str
    png: bytes
    alt: str

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]  # per column: right-aligned
    total_rows: int  # before the page's cut

    @classmethod
    def of(cls, frame: pl.DataFrame, title: str, *, limit: int = TABLE_ROWS) -> Table:
        rows = [[format_cell(value, 4) for value in row] for row in frame.head(limit).iter_rows()]
        numeric = [dtype.is_numeric() for dtype in frame.dtypes]
        return cls(
            title=title, columns=list(frame.columns), rows=rows, numeric=numeric, total_rows=frame.height
        )


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    empty: str | None = None  # what to do to fill a section that has nothing to show
    facts: dict[str, str] = field(default_factory=dict)  # key numbers, shown as a list


@dataclass
class Audit:
    store: str
    created_at: str
    version: str
    sections: list[Section]


# --------------------------------------------------------------------------- collecting
def collect_audit(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    bootstrap: BootstrapSpec | None = None,
) -> Audit:
    """Every section of the audit, from the store behind ``con`` (read only)."""
    import matplotlib

    require_clips(con)
    spec = bootstrap or BootstrapSpec()
    builders = (
        ("store", "The store", lambda: _store_section(con)),
        ("tags", "Tags per clip", lambda: _tags_section(con)),
        ("cooccurrence", "Co-occurrence", lambda: _cooccurrence_section(con)),
        ("shortcuts", "The strongest shortcuts", lambda: _shortcuts_section(con)),
        ("nca", "Necessary Condition Analysis", lambda: _nca_section(con, threshold, spec)),
        ("people", "The human study", lambda: _people_section(con, threshold)),
        ("splits", "Saved splits", lambda: _splits_section(con)),
        ("videos", "Video files", lambda: _videos_section(con)),
    )
    sections = []
    # tag names are text: a "$" in one is not the start of a formula
    with matplotlib.rc_context({"text.parse_math": False}):
        for section_id, title, build in builders:
            try:
                sections.append(build())
            except HvuauditError as exc:  # one section the store cannot fill never costs the others
                hint = f" {exc.hint}" if exc.hint else ""
                sections.append(
                    Section(id=section_id, title=title, empty=f"Not computed: {exc.message}.{hint}")
                )
    path = store_path(con)
    return Audit(
        store=str(path) if path else "(in memory)",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        version=__version__,
        sections=sections,
    )


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _store_section(con: duckdb.DuckDBPyConnection) -> Section:
    tables = store_stats(con, tags_per_clip=False)
    sources = pl.DataFrame(
        [
            {"file": s.path, "subset": s.subset, "rows": s.rows, "sha256": s.sha256}
            for s in store_sources(con)
        ],
        schema={"file": pl.String, "subset": pl.String, "rows": pl.Int64, "sha256": pl.String},
    )
    subsets = tables["subsets"]
    clips = int(subsets["clips"].sum()) if "clips" in subsets.columns else 0
    return Section(
        id="store",
        title="The store",
        intro="The annotation files ingested (with their sha256), and what they hold (`hvuaudit stats`).",
        tables=[
            Table.of(sources, "Ingested files"),
            Table.of(subsets, "Clips per subset"),
            Table.of(tables["categories"], "Tags per category"),
        ],
        facts={"clips": f"{clips:,}", "files ingested": str(sources.height)},
    )


def _tags_section(con: duckdb.DuckDBPyConnection) -> Section:
    histogram = run_query(con, "tags_per_clip_histogram")
    stats = store_stats(con)["tags_per_clip"]
    plt = _plt()
    categories = list(dict.fromkeys(histogram["category"]))
    columns = min(4, max(1, len(categories)))
    rows = -(-len(categories) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.5 * rows), squeeze=False)
    for ax, category in zip(axes.flat, categories, strict=False):
        part = histogram.filter(pl.col("category") == category)
        ax.bar(part["n_tags"].to_list(), part["clips"].to_list(), color="#4477aa")
        ax.set_title(category)
        ax.set_xlabel("tags per clip")
        ax.set_ylabel("clips")
    for ax in list(axes.flat)[len(categories) :]:
        ax.axis("off")
    fig.tight_layout()
    return Section(
        id="tags",
        title="Tags per clip",
        intro="How many tags of each category a clip carries (`hvuaudit sql tags_per_clip_histogram`). "
        "A clip with no tag of a category is unlabelled for it, which the NCA's clip modes treat apart.",
        figures=[Figure("Tags per clip, per category", figure_png(fig), "bar charts of tags per clip")],
        tables=[Table.of(stats, "Tags per clip (`hvuaudit stats`)")],
    )


def _heatmap(frame: pl.DataFrame, category: str) -> Figure:
    plt = _plt()
    actions = list(dict.fromkeys(frame["action"]))
    tags = list(dict.fromkeys(frame["tag"]))
    values = frame["p_tag_given_action"].to_numpy().reshape(len(actions), len(tags))
    fig, ax = plt.subplots(figsize=(0.42 * len(tags) + 3.2, 0.32 * len(actions) + 2.2))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=max(1e-9, float(values.max())), aspect="auto")
    ax.set_xticks(range(len(tags)), tags, rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(len(actions)), actions, fontsize=7)
    fig.colorbar(image, ax=ax, label="share of the action's clips")
    ax.set_title(f"top {len(actions)} actions × top {len(tags)} {category}s")
    fig.tight_layout()
    return Figure(f"Actions × {category}s", figure_png(fig), f"heatmap of actions against {category} tags")


def _cooccurrence_section(con: duckdb.DuckDBPyConnection) -> Section:
    section = Section(
        id="cooccurrence",
        title="Co-occurrence",
        intro=f"For the {HEATMAP_ACTIONS} most common actions and the {HEATMAP_TAGS} most common scenes and "
        "objects: the share of the action's clips that carry the tag "
        f"(`hvuaudit sql cooccurrence_heatmap --param category=scene --param top_actions={HEATMAP_ACTIONS} "
        f"--param top_tags={HEATMAP_TAGS}`).",
    )
    for category in STUDY_CATEGORIES:
        frame = run_query(
            con, "cooccurrence_heatmap", category=category, top_actions=HEATMAP_ACTIONS, top_tags=HEATMAP_TAGS
        )
        if frame.height:
            section.figures.append(_heatmap(frame, category))
        else:
            section.notes.append(f"No clip carries both an action and a {category} tag.")
    return section


def _shortcuts_section(con: duckdb.DuckDBPyConnection) -> Section:
    frame = run_query(con, "scene_predictable_actions")
    section = Section(
        id="shortcuts",
        title="The strongest shortcuts",
        intro="Actions that one scene covers most of (`hvuaudit sql scene_predictable_actions`): a model can "
        "name these actions from the scene alone.",
    )
    if frame.height == 0:
        section.empty = (
            "No action has 10 clips or more with a scene tag, which the query asks for: ingest more "
            "annotations (`hvuaudit ingest`) to see the shortcuts."
        )
        return section
    plt = _plt()
    top = frame.head(SHORTCUTS)
    fig, ax = plt.subplots(figsize=(7, 0.28 * top.height + 1.2))
    labels = [f"{a} ← {s}" for a, s in zip(top["action"], top["top_scene"], strict=True)]
    ax.barh(labels[::-1], top["scene_coverage"].to_list()[::-1], color="#cc6677")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the action's clips with its top scene")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    section.figures.append(Figure("Scene coverage of the action", figure_png(fig), "bars of scene coverage"))
    section.tables.append(Table.of(frame, "Actions predictable from one scene", limit=SHORTCUTS))
    return section


def _nca_section(con: duckdb.DuckDBPyConnection, threshold: float, spec: BootstrapSpec) -> Section:
    section = Section(
        id="nca",
        title="Necessary Condition Analysis",
        intro="Fig. 2b/c (the mean normalised contingency table, `hvuaudit nca matrix --clips both`) and "
        "Fig. 2d (actions with a necessary tag against the threshold, with the bootstrap band of the "
        "difference between categories, `hvuaudit nca sweep --clips both`), in both clip modes; then the "
        f"roles at threshold {threshold:g} with their evidence and band (`hvuaudit nca roles`).",
    )
    categories = list(STUDY_CATEGORIES)
    try:
        modes: tuple[str, ...] = CLIP_MODES
        matrix = nca_matrix(con, categories, clips="both")
    except NoLabelledClipsError as exc:  # a category without labelled clips: all clips can still count
        modes = ("all",)
        matrix = nca_matrix(con, categories, clips="all")
        section.notes.append(f"Labelled clips not counted: {exc.message}.")
    section.figures.append(Figure("Fig. 2b/c", figure_png(matrices_figure(matrix)), "contingency heatmaps"))
    frames = necessity_frames(con, categories, modes)
    grid = parse_thresholds(SWEEP_THRESHOLDS)
    sweep, differences = sweep_rows(frames, grid), share_differences(frames, grid, spec)
    figure = sweep_figure(sweep, marker=threshold, differences=differences)
    section.figures.append(Figure("Fig. 2d", figure_png(figure), "necessary actions against the threshold"))
    section.tables.append(Table.of(matrix, "Mean normalised contingency table (n12 = 1)"))
    for mode in modes:
        roles = recommend_roles(
            con, threshold=threshold, clips=mode, categories=tuple(categories), bootstrap=spec
        )
        verdicts, intervals = roles_tables(roles)
        section.tables.append(Table.of(verdicts, f"Roles with {mode} clips (threshold {threshold:g})"))
        if mode == modes[0]:  # each call holds the differences of both modes: shown once
            title = (
                f"Differences in share at threshold {threshold:g}, both clip modes ({spec.confidence:.0%})"
            )
            section.tables.append(Table.of(intervals, title))
        for category, role in roles.roles.items():
            section.facts[f"{category} ({mode} clips)"] = f"{role}, band {roles.band(category).describe()}"
        section.notes += [f"{mode} clips: {warning}" for warning in roles.warnings]
    return section


def _people_section(con: duckdb.DuckDBPyConnection, threshold: float) -> Section:
    from hvuaudit.annotations import annotation_stats

    section = Section(
        id="people",
        title="The human study",
        intro="Agreement between annotators, and NCA against the people's majority "
        "(`hvuaudit annotate stats`).",
    )
    try:
        stats = annotation_stats(con, list(STUDY_CATEGORIES), threshold=threshold)
    except StoreError:  # no answers yet
        section.empty = (
            "No necessity answers in this store yet: collect some with "
            "`hvuaudit annotate run --annotator NAME --category scene` (or the TUI's Annotate screen)."
        )
        return section
    if stats["pairwise"].height == 0:
        section.notes.append("Cohen's κ compares two annotators; this store has answers from one.")
    for key, title in (
        ("agreement", "Agreement (Fleiss' κ)"),
        ("pairwise", "Pairwise agreement (Cohen's κ)"),
        ("nca_vs_people", "NCA against the people's majority"),
        ("nca_scores", "NCA's precision and recall against the people"),
        ("per_annotator", "Per annotator"),
    ):
        section.tables.append(Table.of(stats[key], title))
    return section


def _splits_section(con: duckdb.DuckDBPyConnection) -> Section:
    from hvuaudit.splits import list_splits

    section = Section(
        id="splits",
        title="Saved splits",
        intro="The splits saved in this store (`hvuaudit split list`) and what each promises, from its "
        "manifest's report: the scene-only baseline (on chosen scenes and on every scene tag) and the "
        "any-tag leakage.",
    )
    splits = list_splits(con)
    if splits.height == 0:
        section.empty = "No split saved in this store yet: `hvuaudit split --variant 2 --out out/si2`."
        return section
    manifests = dict(con.execute("SELECT split, manifest FROM splits").fetchall())
    rows = []
    for row in splits.iter_rows(named=True):
        counts = json.loads(manifests[row["split"]]).get("counts", {}) if row["split"] in manifests else {}
        leakage = counts.get("any_tag_leakage") or {}
        rows.append(
            {
                **{k: row[k] for k in ("split", "variant", "train_clips", "select_clips", "val_clips")},
                "scene_only_baseline": counts.get("scene_only_baseline"),
                "scene_only_baseline_all_tags": counts.get("scene_only_baseline_all_tags"),
                "any_tag_leakage": leakage.get("share"),
                "folder": row["out_dir"],
            }
        )
    section.tables.append(Table.of(pl.DataFrame(rows), "Splits and their guarantees"))
    return section


def _videos_section(con: duckdb.DuckDBPyConnection) -> Section:
    from hvuaudit.videos.scan import coverage, has_scans

    section = Section(
        id="videos",
        title="Video files",
        intro="Clips with a file, and with a usable one, per subset (`hvuaudit videos coverage`).",
    )
    if not has_scans(con):
        section.empty = "This store knows no video files: `hvuaudit videos scan DIR --probe`."
        return section
    section.tables.append(Table.of(coverage(con, "subset"), "Coverage per subset"))
    return section


# --------------------------------------------------------------------------- rendering
def render_html(audit: Audit) -> str:
    """The page: Jinja2's template with every figure inline."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("hvuaudit", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["code"] = _code_spans
    return environment.get_template("audit.html.j2").render(audit=audit)


def _code_spans(text: str):
    """Prose with `commands` in backticks as HTML: escaped, the backticked parts as <code>."""
    import re

    from markupsafe import Markup, escape

    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def audit_facts(audit: Audit) -> dict[str, Any]:
    """The key numbers of each section (for tests and ``--format json``)."""
    return {section.id: section.facts for section in audit.sections}


# --------------------------------------------------------------------------- PDF
CHROMIUM_ENV = "HVUAUDIT_CHROMIUM"  # the browser that prints --pdf, when it is not on PATH
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_TIMEOUT_S = 120


def find_chromium() -> str:
    """The Chromium (or Chrome) that prints the page, or an InputError saying how to get one."""
    import os
    import shutil

    from hvuaudit.errors import InputError

    given = os.environ.get(CHROMIUM_ENV)
    if given:
        if shutil.which(given) is None:
            raise InputError(f"${CHROMIUM_ENV}={given} is not a program", hint="give the path of chromium")
        return given
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    raise InputError(
        "--pdf prints the page with Chromium (or Chrome), which is not installed",
        hint=f"apt-get install chromium, or set ${CHROMIUM_ENV}; or write --html and print it from a browser",
    )


PAGE_TITLE = "HVU scene-bias audit"  # the start of the page's <title>: how --pdf knows it printed the page


def pdf_title(data: bytes) -> str | None:
    """The document title of a PDF (Chromium writes the page's <title> there, as UTF-16 hex or text)."""
    import re

    if found := re.search(rb"/Title\s*<([0-9A-Fa-f]+)>", data):
        raw = bytes.fromhex(found.group(1).decode("ascii"))
        return raw.decode("utf-16") if raw[:2] in (b"\xfe\xff", b"\xff\xfe") else raw.decode("latin-1")
    if found := re.search(rb"/Title\s*\(((?:[^()\\]|\\.)*)\)", data):
        return found.group(1).decode("latin-1")
    return None


def print_pdf(html: Path, pdf: Path) -> None:
    """Print the page ``html`` to ``pdf`` with headless Chromium, as a browser's "Save as PDF" would.

    The PDF is written beside ``pdf`` under a temporary name and renamed once Chromium has finished and
    the file is the page's PDF (its title is the page's: not, say, the error page of a browser that could
    not read the file). An interrupted, failed or hung print leaves nothing half-written, and a hung
    Chromium is killed with every process it started.
    """
    import os
    import signal
    import subprocess
    import tempfile

    from hvuaudit.errors import InputError
    from hvucontracts.files import write_atomically

    chromium = find_chromium()

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="hvuaudit-chromium-") as profile:
            flags = [
                "--headless",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-pdf-header-footer",
            ]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                flags.append("--no-sandbox")  # Chromium refuses to start its sandbox as root
            command = [chromium, *flags, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}", html.as_uri()]
            # its own session, so that a hung browser and its helpers are killed together
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
            )
            try:
                _, stderr = process.communicate(timeout=PRINT_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise InputError(
                    f"Chromium ({chromium}) did not print {html} within {PRINT_TIMEOUT_S} s",
                    hint="run it again; if it hangs again, write --html and print it from a browser",
                ) from exc
        data = tmp.read_bytes() if tmp.is_file() else b""
        if process.returncode != 0 or data[:5] != b"%PDF-":
            raise InputError(
                f"Chromium ({chromium}) could not print {html} to PDF (exit {process.returncode})",
                hint=(stderr.strip().splitlines() or ["open the HTML in a browser and print it"])[-1],
            )
        title = pdf_title(data)
        if not (title or "").startswith(PAGE_TITLE):
            raise InputError(
                f"Chromium ({chromium}) printed another page than {html} (its title: {title!r})",
                hint="can the browser read that folder? A snap-packaged Chromium reads only your home folder",
            )

    write_atomically(pdf, write)
