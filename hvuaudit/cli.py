"""Command-line face of hvuaudit: thin click commands over the core functions.

Each command opens the store, calls one core function and prints its result.
stdout carries data only; progress, notices and errors go to stderr. Errors
from the :mod:`hvuaudit.errors` family (and the trainer's, which carry the same
``exit_code`` attribute) become ``error: ...`` on stderr plus the documented
exit code. Commands that need torch live in ``trainer.cli`` and are imported
lazily, so ``hvuaudit --help`` and the audit commands never load torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from hvuaudit import __version__
from hvuaudit.categories import (
    CLIP_MODES,
    DEFAULT_CLIPS,
    DEFAULT_THRESHOLD,
    SIDE_CATEGORIES,
    STUDY_CATEGORIES,
)
from hvuaudit.errors import InputError
from hvuaudit.output import FORMATS, emit_json, emit_table, emit_tables
from hvucontracts.cli import ErrorHandlingGroup, missing_extra, protect_outputs
from hvucontracts.splitfolder import SELECT_FRACTION, SIDES

# Commands implemented outside the audit core, imported only when invoked.
# name -> ("module:attribute", one-line help shown by `hvuaudit --help`).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("trainer.cli:train", "Train a model on a split folder (needs the [train] extra)."),
    "tune": ("trainer.cli:tune", "Choose λ and γ on a split's selection set: a grid of train runs."),
    "eval": ("hvueval.cli:eval_command", "Evaluate a run folder: top-1, dcorr², per-class accuracy."),
    "report": ("hvueval.cli:report", "Rebuild the paper's Table 2 from run folders."),
    "dcorr": ("hvueval.cli:dcorr", "Exact blockwise squared distance correlation of features vs labels."),
    "plot": (
        "hvueval.cli:plot",
        "Figures from run folders: training curves (Fig. 4), feature t-SNE (Fig. 5).",
    ),
    "explain": ("hvueval.cli:explain", "Grad-CAM saliency on clips of a run (Fig. 6)."),
    "demo": (
        "hvudemo.cli:demo",
        "Run the whole pipeline on the built-in scene-biased benchmark; explain it.",
    ),
}
SYNTH_LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "videos": ("hvudemo.cli:synth_videos", "Write the scene-biased video benchmark (mp4 clips + HVU CSVs)."),
}


class LazyGroup(ErrorHandlingGroup):
    """A click group whose commands from outside the core are imported only when they run."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            target, short_help = self.lazy[cmd_name]
            return _LazyCommand(cmd_name, target, short_help)
        return super().get_command(ctx, cmd_name)


class _LazyCommand(click.Command):
    """Placeholder that resolves to the real command on first use."""

    def __init__(self, name: str, target: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, help=short_help)
        self._target = target
        self._real: click.Command | None = None

    def _load(self) -> click.Command:
        if self._real is None:
            module_name, attribute = self._target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:  # a command module whose own imports need an extra
                friendly = missing_extra(exc, self.name)
                if friendly is None:
                    raise  # a broken install: the traceback is what a bug report needs
                raise friendly from exc
            self._real = protect_outputs(getattr(module, attribute), _store_files)
        return self._real

    def get_short_help_str(self, limit: int = 150) -> str:
        return self.short_help or ""

    def make_context(self, info_name, args, parent=None, **extra):
        return self._load().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context):
        return self._load().invoke(ctx)

    def get_help(self, ctx: click.Context) -> str:
        return self._load().get_help(ctx)

    def get_params(self, ctx: click.Context):
        return self._load().get_params(ctx)


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hvuaudit")
def cli() -> None:
    """Audit scene bias in HVU annotations and train models that do not lean on it.

    \b
    Example:
      hvuaudit ingest HVU_Val_V1.0.csv --categories HVU_Tags_Categories_V1.0.csv
      hvuaudit nca --category scene
    """


# ---------------------------------------------------------------- shared options


def db_option(func: Callable) -> Callable:
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="DuckDB store [default: $HVUAUDIT_DB, else ./hvu.duckdb].",
    )(func)


def format_options(func: Callable) -> Callable:
    func = click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write to this file (atomically) instead of stdout.",
    )(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table (human), csv, json (array of row objects; one object of them for several tables) "
        "or parquet (needs --output; several tables: one file each).",
    )(func)


@contextmanager
def progress_steps(total: int, label: str) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr when it is a terminal; silent otherwise (CI, pipes)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:  # not even a disabled bar: rich before 13.4 still printed a blank line
        yield lambda message: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)

        def advance(message: str) -> None:
            bar.update(task, advance=1, description=f"{label}: {message}")

        yield advance


def parse_params(params: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in params:
        if "=" not in item:
            raise click.BadParameter(f"'{item}' is not key=value", param_hint="--param")
        key, value = item.split("=", 1)
        parsed[key.strip()] = value
    return parsed


# ---------------------------------------------------------------- store: ingest, sql, stats


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--categories",
    type=click.Path(path_type=Path),
    default=None,
    help="HVU_Tags_Categories_V1.0.csv (Tag,Category). Needed on the first ingest.",
)
@click.option(
    "--subset", default=None, help="Subset name [default: from the file name, HVU_Train_* -> train]."
)
@click.option(
    "--allow-unknown", is_flag=True, help="Store tags missing from the categories file as 'unknown'."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json prints a machine-readable summary on stdout.",
)
@db_option
def ingest(files, categories, subset, allow_unknown, fmt, db):
    """Ingest HVU annotation CSVs into the DuckDB store (one transaction).

    Re-ingesting a file with the same sha256 changes nothing.

    \b
    Example:
      hvuaudit ingest HVU_Val_V1.0.csv --categories HVU_Tags_Categories_V1.0.csv --db hvu.duckdb
    """
    from hvuaudit.ingest import ingest as run_ingest

    with progress_steps(len(files) + 6, "ingest") as step:
        summary = run_ingest(
            files, categories, db=db, subset=subset, allow_unknown=allow_unknown, progress=step
        )
    if summary.interrupted_after_commit:
        click.echo("note: Ctrl-C came after the commit had begun; the ingest is complete", err=True)
    click.echo(summary.one_line(), err=True)
    if fmt == "json":
        emit_json(summary.as_dict())


@cli.command()
@click.argument("query_or_file")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="Value for a $KEY placeholder (repeatable)."
)
@format_options
@db_option
def sql(query_or_file, params, fmt, output, db):
    """Run SQL (text, a .sql file, or a bundled query name) on the store, read-only.

    Statements that would write (DELETE, DROP, COPY ... TO, ATTACH, ...) are refused.

    \b
    Examples:
      hvuaudit sql "SELECT * FROM cooccurrence WHERE action = 'playing_congas' LIMIT 5"
      hvuaudit sql top_scenes_of_action --param action=doing_karate --format json
      hvuaudit sql my_query.sql --format parquet --output out.parquet
    """
    from hvuaudit.store import load_sql, open_store, run_sql, sql_parameters

    candidate = Path(query_or_file)
    if candidate.suffix == ".sql" and candidate.is_file():
        text = candidate.read_text(encoding="utf-8")
    elif query_or_file.replace("_", "").isalnum():
        text = load_sql(query_or_file)
    else:
        text = query_or_file
    values = parse_params(params)
    missing = [p for p in sql_parameters(text) if p not in values]
    if missing:
        raise click.UsageError(f"the query needs {' '.join('--param ' + m + '=VALUE' for m in missing)}")
    with open_store(db, read_only=True, sandboxed=True) as con:
        frame = run_sql(con, text, {k: v for k, v in values.items() if k in sql_parameters(text)})
    emit_table(frame, fmt, output)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def queries(fmt):
    """List the bundled queries (run them with `hvuaudit sql NAME`).

    \b
    Example:
      hvuaudit queries
    """
    import polars as pl

    from hvuaudit.store import bundled_queries

    frame = pl.DataFrame(bundled_queries(), schema=["name", "parameters", "description"], orient="row")
    emit_table(frame, fmt)


@cli.command()
@format_options
@db_option
def stats(fmt, output, db):
    """Clips per subset, tags per category, tags per clip, clips without action or scene.

    \b
    Example:
      hvuaudit stats --format json
    """
    from hvuaudit.cooccurrence import store_stats
    from hvuaudit.store import open_store

    with open_store(db, read_only=True) as con:
        tables = store_stats(con)
    emit_tables(tables, fmt, output)


# ---------------------------------------------------------------- NCA


def clips_option(func: Callable | None = None, *, both: bool = False) -> Callable:
    """``--clips``: which clips NCA counts; ``both`` (Fig. 2 outputs only) puts the two modes side by side."""

    def decorate(f: Callable) -> Callable:
        return click.option(
            "--clips",
            type=click.Choice((*CLIP_MODES, "both") if both else CLIP_MODES),
            default=DEFAULT_CLIPS,
            show_default=True,
            help="labelled: count only the clips with a tag of the category (a clip without any scene "
            "tag is then not taken for a clip without the scene); all: every clip, as the paper"
            + ("; both: each mode, side by side" if both else "")
            + ".",
        )(f)

    return decorate(func) if func is not None else decorate


def threshold_option(func: Callable) -> Callable:
    return click.option(
        "--threshold",
        type=str,
        default=f"{DEFAULT_THRESHOLD:g}",
        show_default=True,
        help="Necessary when n11/n12 <= threshold.",
    )(func)


def bootstrap_options(func: Callable) -> Callable:
    func = click.option(
        "--resamples",
        type=click.IntRange(100, 100_000),
        default=2000,
        show_default=True,
        help="Bootstrap resamples of the actions.",
    )(func)
    func = click.option(
        "--confidence", type=float, default=0.95, show_default=True, help="Level of the bootstrap intervals."
    )(func)
    return click.option(
        "--seed",
        type=click.IntRange(0, 2**32 - 1),
        default=0,
        show_default=True,
        help="Seed of the bootstrap.",
    )(func)


def subset_option(func: Callable) -> Callable:
    return click.option(
        "--subset", default=None, help="Restrict to one subset (e.g. val) [default: all clips]."
    )(func)


@cli.command()
@click.option(
    "--html",
    "output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the audit page here: one self-contained HTML file, figures inline.",
)
@click.option(
    "--pdf",
    "plot",  # the parameter name that protect_outputs guards like --output (hvucontracts.cli)
    type=click.Path(path_type=Path),
    default=None,
    help="Also (or only) print it to this PDF, with headless Chromium.",
)
@threshold_option
@bootstrap_options
@click.option("--force", is_flag=True, help="Replace the files if they exist.")
@db_option
def audit(output, plot, threshold, resamples, confidence, seed, force, db):
    """One shareable HTML page of the store's biases: provenance, tags per clip, co-occurrence, shortcuts,
    NCA (Fig. 2b/c/d in both clip modes, the roles), the human study, the saved splits and the videos.

    Every number comes from the function the matching command prints it with; the page fetches nothing
    when it is opened (docs/audit.md).

    \b
    Examples:
      hvuaudit audit --html audit.html
      hvuaudit audit --html audit.html --pdf audit.pdf
    """
    import os
    import tempfile

    from hvuaudit.audit import collect_audit, find_chromium, print_pdf, render_html
    from hvuaudit.roles import BootstrapSpec
    from hvuaudit.store import open_store, store_sources
    from hvucontracts.files import TMP_TAG, refuse_overwriting, write_text_atomically

    if output is None and plot is None:
        raise InputError("nothing to write", hint="give --html audit.html, --pdf audit.pdf, or both")
    if output is not None:
        check_new_file(output, "--html", force, example="audit.html")
    if plot is not None:
        check_new_file(plot, "--pdf", force, suffixes=(".pdf",), example="audit.pdf")
        find_chromium()  # before the page is computed: a missing browser is said at once
    spec = BootstrapSpec(resamples=resamples, confidence=confidence, seed=seed)
    with open_store(db, read_only=True) as con:
        # the annotation files the store was made from are the page's provenance: never written over
        sources = [source.path for source in store_sources(con)]
        for target in (output, plot):
            if target is not None:
                refuse_overwriting(target, sources)
        page = render_html(collect_audit(con, threshold=_threshold(threshold), bootstrap=spec))
    if output is not None:
        write_text_atomically(output, page)
        click.echo(f"wrote {output}", err=True)
    if plot is not None:
        # the page Chromium prints: --html's, else a temporary file beside the PDF (a browser that may not
        # read /tmp, as a snap-packaged one, can still read the folder the PDF goes to)
        page_file = output
        try:
            if page_file is None:  # ending in .html, or Chromium would show it as text
                fd, name = tempfile.mkstemp(prefix=f".{plot.stem}{TMP_TAG}", suffix=".html", dir=plot.parent)
                os.close(fd)
                page_file = Path(name)
                page_file.write_text(page, encoding="utf-8")
            print_pdf(page_file.resolve(), plot)
        finally:
            if output is None and page_file is not None:
                page_file.unlink(missing_ok=True)
        click.echo(f"wrote {plot}", err=True)


@cli.group(invoke_without_command=True)
@click.option(
    "--category",
    type=str,
    default="scene",
    show_default=True,
    help="scene, object, event, attribute or concept.",
)
@threshold_option
@click.option(
    "--all-pairs", is_flag=True, help="List every passing (action, tag) pair, not only each action's top tag."
)
@clips_option
@subset_option
@format_options
@db_option
@click.pass_context
def nca(ctx, category, threshold, all_pairs, clips, subset, fmt, output, db):
    """Necessary Condition Analysis: per action, is its top tag of a category necessary?

    One row per action: action, tag, n_action, n_tag, n11, n12, n22, ratio (n11/n12),
    share (n11/n_action), necessary, p_value (one-sided hypergeometric), q_value (BH), and the
    clips counted (labelled: those with a tag of the category; or all).

    \b
    Examples:
      hvuaudit nca --category scene --threshold 0.2
      hvuaudit nca --category scene --clips all --format json
      hvuaudit nca --category object --all-pairs --threshold 0.1 --format csv -o pairs.csv
      hvuaudit nca sweep --category scene --category object --clips both --plot fig2d.png
    """
    if ctx.invoked_subcommand is not None:
        return
    from hvuaudit.nca import compute_nca
    from hvuaudit.store import open_store

    with open_store(db, read_only=True) as con:
        frame = compute_nca(
            con, category, threshold=_threshold(threshold), subset=subset, all_pairs=all_pairs, clips=clips
        )
    emit_table(frame, fmt, output, title=f"NCA: {category} (threshold {threshold}, {clips} clips)")


def _threshold(text: str) -> float:
    from hvuaudit.nca import check_threshold

    try:
        return check_threshold(float(text))
    except ValueError as exc:
        raise InputError(
            f"threshold must be a number >= 0 (got '{text}')", hint="e.g. --threshold 0.2"
        ) from exc


@nca.command("matrix")
@click.option("--category", "categories", multiple=True, default=STUDY_CATEGORIES, show_default=True)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Draw Fig. 2b/c to this PNG.",
)
@clips_option(both=True)
@subset_option
@format_options
@db_option
def nca_matrix_command(categories, plot, clips, subset, fmt, output, db):
    """Fig. 2b/c: mean normalised contingency table per category (n12 = 1).

    \b
    Example:
      hvuaudit nca matrix --category scene --category object --clips both --plot fig2bc.png
    """
    from hvuaudit.nca import nca_matrix, plot_matrices
    from hvuaudit.store import check_category, open_store

    with open_store(db, read_only=True) as con:
        frame = nca_matrix(con, [check_category(c) for c in categories], subset=subset, clips=clips)
    emit_table(frame, fmt, output, title="mean normalised contingency table")
    if plot:
        plot_matrices(frame, plot)
        click.echo(f"wrote {plot}", err=True)


@nca.command("sweep")
@click.option(
    "--thresholds", default="0:1:0.05", show_default=True, help="START:END:STEP (inclusive) or a list a,b,c."
)
@click.option("--category", "categories", multiple=True, default=STUDY_CATEGORIES, show_default=True)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Draw Fig. 2d, with the bootstrap band of each pair's difference, to this PNG.",
)
@clips_option(both=True)
@bootstrap_options
@subset_option
@format_options
@db_option
def nca_sweep_command(
    thresholds, categories, plot, clips, resamples, confidence, seed, subset, fmt, output, db
):
    """Fig. 2d: number of actions with a necessary tag against the threshold.

    Two tables: `sweep` (per category, threshold and clip mode: actions with a necessary top
    tag, and their share) and `differences` (per pair of categories: the difference in share
    with its bootstrap interval over actions, and the confidence, resamples and seed that drew
    it). JSON is one object with both; CSV and Parquet need --output (one file per table).

    \b
    Example:
      hvuaudit nca sweep --thresholds 0:1:0.05 --category scene --category object --plot fig2d.png
    """
    from hvuaudit.nca import clip_modes, necessity_frames, parse_thresholds, plot_sweep, sweep_rows
    from hvuaudit.roles import BootstrapSpec, share_differences
    from hvuaudit.store import check_category, open_store

    grid = parse_thresholds(thresholds)
    spec = BootstrapSpec(resamples=resamples, confidence=confidence, seed=seed)
    with open_store(db, read_only=True) as con:
        frames = necessity_frames(
            con, [check_category(c) for c in categories], clip_modes(clips), subset=subset
        )
    sweep, differences = sweep_rows(frames, grid), share_differences(frames, grid, spec)
    emit_tables({"sweep": sweep, "differences": differences}, fmt, output)
    if plot:
        plot_sweep(sweep, plot, differences=differences)
        click.echo(f"wrote {plot}", err=True)


@nca.command("roles")
@threshold_option
@clips_option
@click.option(
    "--category",
    "categories",
    multiple=True,
    default=STUDY_CATEGORIES,
    show_default=True,
    help="The categories to compare (at least two).",
)
@bootstrap_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write tasks.json here (read by `hvuaudit train --tasks`).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@subset_option
@db_option
def nca_roles_command(threshold, clips, categories, resamples, confidence, seed, output, fmt, subset, db):
    """Recommend a role per category: auxiliary (learn), adversarial (unlearn) or undecided.

    Categories are compared, as in Fig. 2d: one whose share of actions with a necessary tag is
    below another's by a bootstrap interval that excludes 0 is adversarial; one above another
    and below none is auxiliary. A role's band is the interval of thresholds around 0.2 where
    its verdict holds (in the chosen clip mode); a threshold outside it, or another clip mode
    that disagrees, prints a warning (also written into tasks.json). Exit 0 even when a role is
    undecided; `hvuaudit train --tasks` refuses an undecided head (exit 3).

    \b
    Example:
      hvuaudit nca roles --output tasks.json
    """
    from hvuaudit.roles import BootstrapSpec, recommend_roles, roles_tables, write_tasks
    from hvuaudit.store import check_category, open_store

    spec = BootstrapSpec(resamples=resamples, confidence=confidence, seed=seed)
    with open_store(db, read_only=True) as con:
        roles = recommend_roles(
            con,
            threshold=_threshold(threshold),
            clips=clips,
            subset=subset,
            categories=tuple(check_category(c) for c in categories),
            bootstrap=spec,
        )
    if fmt == "json":
        emit_json(roles.as_json())
    else:
        verdicts, intervals = roles_tables(roles)
        emit_table(
            verdicts, "table", title=f"task roles at threshold {roles.threshold:g} ({roles.clips} clips)"
        )
        emit_table(
            intervals,
            "table",
            title=f"difference in share of actions with a necessary tag ({spec.confidence:.0%} interval)",
        )
    for warning in roles.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output:
        write_tasks(roles, output)
        click.echo(f"wrote {output}", err=True)


# ---------------------------------------------------------------- splits


@cli.group(invoke_without_command=True)
@click.option("--variant", default="2", show_default=True, help="default, 1 (SI-1) or 2 (SI-2).")
@click.option(
    "--min-videos",
    type=int,
    default=124,
    show_default=True,
    help="Keep actions with at least this many clips.",
)
@click.option(
    "--val-fraction",
    type=float,
    default=None,
    help="Target share of each action in val, in (0, 1) [default: 0.2; with --max-train-scenes alone, "
    "no share limit, which --val-fraction 0 also asks for].",
)
@click.option(
    "--max-train-scenes",
    type=int,
    default=None,
    help="SI-2: keep at most this many of each action's most common (action, scene) pairs in training.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="No validation clip carries any scene tag seen with its action in training (drops clips; "
    "the report says which). Without it: the paper's rule, on each clip's chosen scene only.",
)
@click.option(
    "--select-fraction",
    type=float,
    default=SELECT_FRACTION,
    show_default=True,
    help="Share of each action's training clips held out as select.csv, the set the trainer selects on "
    "(best.pt, plateau, early stopping), in [0, 1); 0: none, and selection reads val (the test pairs).",
)
@click.option("--select-seed", type=int, default=0, show_default=True, help="Seed of the select.csv draw.")
@click.option(
    "--require-videos",
    is_flag=True,
    help="Only clips with a usable video file, as `hvuaudit videos scan` recorded them; the report and "
    "the manifest give the coverage each side would have had without it.",
)
@click.option(
    "--primary-action",
    default="rarest",
    show_default=True,
    help="rarest, first, or a CSV youtube_id,time_start,time_end,action.",
)
@subset_option
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Split folder to write (e.g. out/si2)."
)
@click.option("--force", is_flag=True, help="Replace an existing non-empty --out.")
@click.option(
    "--videos",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Record this videos directory in the manifest (read by `hvuaudit train`).",
)
@click.option(
    "--name-template",
    default=None,
    help="Clip file names: mmaction, downloader, raw or a format string [default: mmaction].",
)
@click.option(
    "--eval-subset",
    "eval_subsets",
    multiple=True,
    help="Also write the clips of this store subset as an extra evaluation set eval_NAME.csv (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Print the report without writing anything.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@db_option
@click.pass_context
def split(
    ctx,
    variant,
    min_videos,
    val_fraction,
    max_train_scenes,
    strict,
    select_fraction,
    select_seed,
    require_videos,
    primary_action,
    subset,
    out,
    force,
    videos,
    name_template,
    eval_subsets,
    dry_run,
    fmt,
    db,
):
    """Build a Scene-Invariant (SI-1, SI-2) or the default split and export it as a folder.

    The folder (manifest.json, train.csv, val.csv, labels.json) is what
    `hvuaudit train --split` reads; the split is also saved in the store.

    \b
    Examples:
      hvuaudit split --variant 2 --min-videos 124 --out out/si2
      hvuaudit split --variant 1 --min-videos 25 --subset val --out out/si1 --videos ~/hvu/videos
      hvuaudit split verify out/si2
    """
    if ctx.invoked_subcommand is not None:
        return
    from hvuaudit.splits import SplitParams, build_split, export_split
    from hvuaudit.store import open_store

    if out is None and not dry_run:
        raise click.UsageError("--out is required (or pass --dry-run to only print the report)")
    if not dry_run:  # refuse a wrong --out before the store is even opened
        from hvuaudit.splits import SPLIT_KIND
        from hvuaudit.store import default_db_path
        from hvucontracts.files import check_replaceable

        check_replaceable(out, kind=SPLIT_KIND, force=force, protected=[db or default_db_path(), videos])
    params = SplitParams(
        variant=variant,
        min_videos=min_videos,
        val_fraction=val_fraction,
        max_train_scenes=max_train_scenes,
        strict=strict,
        select_fraction=select_fraction,
        select_seed=select_seed,
        require_videos=require_videos,
        primary_action=primary_action,
        subset=subset,
        videos=str(videos) if videos else None,
        name_template=name_template,
        eval_subsets=tuple(eval_subsets),
    )
    with progress_steps(2, "split") as step:
        with open_store(db, read_only=dry_run) as con:
            step("building")
            result = build_split(con, params)
            if not dry_run:
                step("writing")
                export_split(con, result, out, force=force)
    _print_split_report(result.report, fmt)
    if not dry_run:
        held = result.report["select"]["clips"]
        click.echo(
            f"wrote {out} ({result.train.height:,} train / {held:,} select / "
            f"{result.val.height:,} val clips)",
            err=True,
        )


def _print_split_report(report: dict, fmt: str) -> None:
    import polars as pl

    if fmt == "json":
        emit_json(report)
        return
    sides = pl.DataFrame(
        [{"side": side, **{k: report[side][k] for k in ("clips", "actions", "pairs")}} for side in SIDES]
    )
    emit_table(sides, "table", title="split")
    scenes, leak = report["train_scenes_per_action"], report["any_tag_leakage"]
    strict = report["strict"]
    facts = {
        "training scenes per action: q1 / median / q3": (
            f"{scenes['q1']:g} / {scenes['median']:g} / {scenes['q3']:g}"
        ),
        "val clips with a scene tag seen with their action in training": (
            f"{leak['clips']:,} ({leak['share']:.1%})"
        ),
        "scene-only baseline accuracy (val), chosen scene": report["scene_only_baseline"],
        "scene-only baseline accuracy (val), every scene tag": report["scene_only_baseline_all_tags"],
        "selection set (select.csv)": (
            f"{report['select']['fraction']:g} of each action's training clips, "
            f"seed {report['select']['seed']}"
            + (
                f"; {report['select']['actions_without_clips']} action(s) without a selection clip"
                if report["select"].get("actions_without_clips")
                else ""
            )
            if report["select"]["fraction"]
            else "none (--select-fraction 0): the trainer selects on val, the test pairs"
        ),
        "strict": (
            f"dropped {strict['dropped_train_clips']:,} train and {strict['dropped_val_clips']:,} val clips, "
            f"{len(strict['dropped_actions'])} action(s)"
            + (f": {', '.join(strict['dropped_actions'][:5])}" if strict["dropped_actions"] else "")
            + (" …" if len(strict["dropped_actions"]) > 5 else "")
            if strict["enabled"]
            else "no (the paper's rule: chosen scenes only)"
        ),
        "H(action | scene) on train, bits": report["conditional_entropy_action_given_scene_bits"],
        **_video_facts(report["videos"]),
        **{f"left out: {k.replace('_', ' ')}": v for k, v in report["left_out"].items()},
    }
    emit_table(pl.DataFrame({"fact": list(facts), "value": [str(v) for v in facts.values()]}), "table")


def _video_facts(videos: dict) -> dict[str, str]:
    """The split report's lines on video files: per side, clips with a file (and, with --require-videos,
    what each side would have held without it)."""
    if not videos["scanned"]:
        return {"video files": "not known (no `hvuaudit videos scan` in this store)"}
    facts = {}
    before = videos.get("without_require_videos", {})
    for side in (
        *SIDES,
        *[k for k in videos if k not in (*SIDES, "scanned", "required", "without_require_videos")],
    ):
        if side not in videos:
            continue
        now = videos[side]
        line = f"{now['with_video']:,} of {now['clips']:,}"
        if side in before:
            line += (
                f" (without --require-videos: {before[side]['with_video']:,} of {before[side]['clips']:,})"
            )
        facts[f"{side} clips with a video file"] = line
    return facts


@split.command("verify")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@db_option
def split_verify(folder, db):
    """Recompute a split from the store and check its eight invariants.

    Exits 0 when every check passes, 3 otherwise.

    \b
    Example:
      hvuaudit split verify out/si2
    """
    from hvuaudit.splits import verify_split
    from hvuaudit.store import open_store

    with open_store(db, read_only=True) as con:
        report = verify_split(con, folder)
    for name, ok, detail in report.checks:
        click.echo(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if not report.ok:
        raise InputError(f"{folder} breaks {sum(not ok for _, ok, _ in report.checks)} invariant(s)")


@split.command("list")
@format_options
@db_option
def split_list(fmt, output, db):
    """List the splits saved in the store.

    \b
    Example:
      hvuaudit split list
    """
    from hvuaudit.splits import list_splits
    from hvuaudit.store import open_store

    with open_store(db, read_only=True) as con:
        emit_table(list_splits(con), fmt, output)


@cli.group()
def export():
    """Write a split folder in the formats of other tools (docs/audit.md, Exports).

    \b
    Example:
      hvuaudit export mmaction out/si2 --out out/si2_mmaction
    """


@export.command("mmaction")
@click.argument("split_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write [default: SPLIT_DIR_mmaction beside the split].",
)
@click.option("--force", is_flag=True, help="Replace an mmaction export that hvuaudit wrote there.")
@db_option
def export_mmaction(split_dir, out, force, db):
    """mmaction2's HVU lists: hvu_tags.json (each category's tags, sorted) and hvu_SET_video.json per set.

    Every clip's tags in all six categories come from the store the split was built from (the same
    annotation files, by sha256); a clip's file name is mmaction2's (youtube id, start and end × 10).

    \b
    Example:
      hvuaudit export mmaction out/si2 --out out/si2_mmaction
    """
    import json

    from hvuaudit.exports import EXPORT_RECORD, MMACTION_KIND, mmaction_files, write_export
    from hvuaudit.store import open_store, store_path
    from hvucontracts.splitfolder import load_split

    split = load_split(split_dir)
    out = out or split.dir.with_name(f"{split.dir.name}_mmaction")
    with open_store(db, read_only=True) as con:
        files = mmaction_files(con, split)
        protected = [store_path(con), split.dir]
    write_export(out, MMACTION_KIND, files, force=force, protected=protected)
    outside = json.loads(files[EXPORT_RECORD])["tags_outside_hvu_categories"]
    if outside:
        click.echo(
            f"warning: {len(outside)} tag(s) of no HVU category (ingested with --allow-unknown) are in no "
            f"list, e.g. {next(iter(outside))}; {out / EXPORT_RECORD} names them",
            err=True,
        )
    click.echo(str(out))


@export.command("fiftyone")
@click.argument("split_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write [default: SPLIT_DIR_fiftyone beside the split].",
)
@click.option(
    "--videos",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the clip files [default: the split manifest's videos.dir].",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A run folder scored by `hvuaudit eval`: its predictions and features join the samples.",
)
@click.option("--force", is_flag=True, help="Replace a FiftyOne export that hvuaudit wrote there.")
@db_option
def export_fiftyone(split_dir, out, videos, run_dir, force, db):
    """A FiftyOne dataset of the split: samples.json, for fiftyone.Dataset.from_json (FiftyOne not needed).

    A video sample per clip: its file, its split side as a sample tag, its tags in all six categories,
    the primary action and chosen scene; with --run, the model's prediction and features.

    \b
    Example:
      hvuaudit export fiftyone out/si2 --run runs/si2_amt_r3d18_seed0
    """
    from hvuaudit.exports import FIFTYONE_KIND, fiftyone_files, write_export
    from hvuaudit.store import open_store, store_path
    from hvucontracts.splitfolder import load_split

    split = load_split(split_dir)
    out = out or split.dir.with_name(f"{split.dir.name}_fiftyone")
    with open_store(db, read_only=True) as con:
        files = fiftyone_files(con, split, videos=videos, run=run_dir)
        protected = [store_path(con), split.dir, videos, run_dir]
    write_export(out, FIFTYONE_KIND, files, force=force, protected=protected)
    click.echo(str(out))


# ---------------------------------------------------------------- necessity annotation


@cli.group()
def annotate():
    """Human necessity annotation: queue, prompt, export/import, agreement.

    \b
    Example:
      hvuaudit annotate run --annotator ab --category scene
      hvuaudit annotate stats --category scene --category object
    """


def queue_options(func: Callable) -> Callable:
    func = click.option(
        "--min-cooccurrence",
        type=int,
        default=1,
        show_default=True,
        help="Only pairs that co-occur in at least this many clips.",
    )(func)
    func = click.option(
        "--order",
        type=click.Choice(["nca", "frequency", "random"]),
        default="nca",
        show_default=True,
        help="nca: pairs NCA finds borderline first.",
    )(func)
    func = click.option("--seed", type=int, default=0, show_default=True, help="Seed for --order random.")(
        func
    )
    # --order nca ranks the pairs by how close their ratio lies to this threshold, over these clips
    func = clips_option(threshold_option(func))
    return click.option(
        "--category",
        type=click.Choice(SIDE_CATEGORIES),
        default="scene",
        show_default=True,
    )(func)


@annotate.command("queue")
@queue_options
@click.option("--annotator", default=None, help="Skip the pairs this annotator already answered.")
@click.option("--limit", type=int, default=None, help="Show at most N pairs.")
@format_options
@db_option
def annotate_queue(
    category, min_cooccurrence, order, seed, threshold, clips, annotator, limit, fmt, output, db
):
    """Show the pairs an annotator will be asked about, in order.

    \b
    Example:
      hvuaudit annotate queue --category object --min-cooccurrence 5 --limit 20
    """
    from hvuaudit.annotations import build_queue
    from hvuaudit.store import open_store

    with open_store(db, read_only=True) as con:
        frame = build_queue(
            con,
            category=category,
            annotator=annotator,
            min_cooccurrence=min_cooccurrence,
            order=order,
            seed=seed,
            limit=limit,
            threshold=_threshold(threshold),
            clips=clips,
        )
    emit_table(frame, fmt, output)


@annotate.command("run")
@click.option("--annotator", required=True, help="Your name or initials (answers are stored under it).")
@queue_options
@db_option
def annotate_run(annotator, category, min_cooccurrence, order, seed, threshold, clips, db):
    """Answer "is this tag necessary for this action?" one pair at a time (y/n/u/b/?/q).

    Every answer is saved the moment it is given; run the same command to resume.

    \b
    Example:
      hvuaudit annotate run --annotator ab --category scene --min-cooccurrence 3
    """
    import sys

    from hvuaudit.annotations import check_annotator, run_prompt
    from hvuaudit.cooccurrence import clips_of_pair
    from hvuaudit.store import open_store

    annotator = check_annotator(annotator)

    def read_key(prompt: str) -> str:
        click.echo(prompt, nl=False)
        sys.stdout.flush()
        return sys.stdin.readline() or "q"

    def write(text: str) -> None:
        click.echo(text)
        sys.stdout.flush()

    with open_store(db, read_only=False) as con:

        def examples(action: str, tag: str) -> list[str]:
            clips = clips_of_pair(con, action, tag).head(2)
            return [f"e.g. {row['url']}  ({row['tags']})" for row in clips.iter_rows(named=True)]

        given = run_prompt(
            con,
            annotator=annotator,
            category=category,
            read_key=read_key,
            write=write,
            min_cooccurrence=min_cooccurrence,
            order=order,
            seed=seed,
            threshold=_threshold(threshold),
            clips=clips,
            examples=examples,
        )
    click.echo(f"saved {given} answer(s) for {annotator}", err=True)


@annotate.command("export")
@click.option("--annotator", default=None, help="Only this annotator [default: everyone].")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="answers.csv, or answers.jsonl for JSON lines.",
)
@db_option
def annotate_export(annotator, output, db):
    """Export current answers (CSV header: annotator,action,tag,category,answer,note,answered_at,source).

    \b
    Example:
      hvuaudit annotate export --annotator ab -o answers_ab.csv
    """
    from hvuaudit.annotations import export_answers
    from hvuaudit.store import open_store

    with open_store(db, read_only=True) as con:
        count = export_answers(con, output, annotator=annotator)
    click.echo(f"exported {count} answer(s) to {output}", err=True)


@annotate.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
def annotate_import(files, db):
    """Import exported answers (idempotent; a conflict keeps the newer answered_at and is listed).

    \b
    Example:
      hvuaudit annotate import answers_ab.csv answers_cd.jsonl
    """
    from hvuaudit.annotations import import_answers
    from hvuaudit.store import open_store

    with open_store(db, read_only=False) as con:
        summary = import_answers(con, files)
    for conflict in summary.conflicts:
        click.echo(
            f"conflict: {conflict['annotator']} {conflict['action']} / {conflict['tag']}: "
            f"{conflict['current_answer']} ({conflict['current_answered_at']}) vs {conflict['answer']} "
            f"({conflict['answered_at']}) -> "
            + (
                "kept the stored one (equal answered_at)"
                if conflict["answered_at"] == conflict["current_answered_at"]
                else "kept the newer"
            ),
            err=True,
        )
    click.echo(summary.one_line(), err=True)


@annotate.command("stats")
@click.option("--category", "categories", multiple=True, default=STUDY_CATEGORIES, show_default=True)
@threshold_option
@clips_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@db_option
def annotate_stats(categories, threshold, clips, fmt, db):
    """Per-annotator results, Fleiss'/Cohen's κ, majority labels and NCA versus people.

    \b
    Example:
      hvuaudit annotate stats --category scene --category object --format json
    """
    from hvuaudit.annotations import annotation_stats
    from hvuaudit.store import open_store

    with open_store(db, read_only=True) as con:
        tables = annotation_stats(con, list(categories), threshold=_threshold(threshold), clips=clips)
    if fmt == "table":
        tables["majority"] = tables["majority"].head(30)  # the full list is in --format json
    emit_tables(tables, fmt)


# ---------------------------------------------------------------- TUI


_IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def videos_source_options(func: Callable) -> Callable:
    """--videos and --name-template: where clip files are, when the store has not scanned them."""
    func = click.option(
        "--name-template",
        default=None,
        help="How --videos names a clip's file: mmaction, downloader, raw or a format string "
        "[default: try every known name].",
    )(func)
    return click.option(
        "--videos",
        "videos_dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="Folder of clip files, for frames [default: the store's scanned videos].",
    )(func)


def _video_source(videos_dir: Path | None, name_template: str | None):
    from hvuaudit.videos.frames import VideoSource

    if name_template is not None and videos_dir is None:
        raise InputError("--name-template needs --videos", hint="give the folder: --videos DIR")
    return VideoSource(videos_dir, name_template)


def _require_tags(con, *tags: str) -> dict[str, str]:
    """The category of each tag; exit 3 naming a tag the store does not know, with the nearest known ones."""
    import difflib

    names = dict(con.execute("SELECT tag, category FROM tags").fetchall())
    for tag in tags:
        if tag not in names:
            close = difflib.get_close_matches(tag, names, n=3)
            raise InputError(
                f"the store has no tag {tag!r}",
                hint=f"did you mean {', '.join(close)}?" if close else "list them: hvuaudit sql actions",
            )
    return {tag: names[tag] for tag in tags}


def check_new_file(
    output: Path, option: str, force: bool, *, suffixes: tuple[str, ...] = (), example: str = "out"
) -> None:
    """Refuse an output file that cannot be written as asked: a folder, a missing parent or a wrong
    suffix (exit 3), an existing file without --force (exit 5)."""
    from hvuaudit.errors import ConflictError

    if output.is_dir():
        raise InputError(
            f"{option} {output} is a folder", hint=f"give a file name, e.g. {option} {output / example}"
        )
    if not output.parent.is_dir():
        raise InputError(
            f"{option} {output}: {output.parent} is not a folder", hint="choose a file in an existing folder"
        )
    if suffixes and output.suffix.lower() not in suffixes:
        raise InputError(
            f"{option} {output}: unknown file type", hint=f"end the name in {', '.join(suffixes)}"
        )
    if output.exists() and not force:
        raise ConflictError(
            f"{output} exists", hint=f"pass --force to replace it, or choose another {option}"
        )


@cli.command()
@click.option(
    "--read-only",
    is_flag=True,
    help="Open the store read-only (browse a store someone else owns); annotation and split export are off.",
)
@click.option(
    "--serve", is_flag=True, help="Run it in a web browser instead (textual-serve, the serve extra)."
)
@click.option("--host", default="localhost", show_default=True, help="--serve: the address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="--serve: the port to listen on.")
@videos_source_options
@db_option
def tui(read_only, serve, host, port, videos_dir, name_template, db):
    """Explore the store, decide with NCA, annotate necessity and build splits in a terminal UI.

    Keys 1-5 switch screens (Overview, Browse, NCA, Annotate, Splits), ? shows every key,
    ctrl+p opens the command palette, ctrl+q quits. With --serve the same app runs in a browser tab
    at http://localhost:8000 (one app per tab).

    \b
    Examples:
      hvuaudit tui --db hvu.duckdb
      hvuaudit tui --db /shared/hvu.duckdb --read-only
      hvuaudit tui --serve --port 8001
      hvuaudit tui --videos ~/hvu/videos --name-template mmaction
    """
    source = _video_source(videos_dir, name_template)
    if serve:
        from hvuaudit.errors import StoreError
        from hvuaudit.store import default_db_path, has_table, open_store
        from hvuaudit.tui.serve import serve as serve_tui

        store = (db or default_db_path()).resolve()
        with open_store(
            store, read_only=True
        ) as con:  # a missing or foreign store stops here, not in each tab
            if not has_table(con, "clips"):
                raise StoreError(
                    f"{store} is a DuckDB file but not an hvuaudit store",
                    hint=f"make one with: hvuaudit ingest HVU_Val_V1.0.csv --categories ... --db {store}",
                )
        serve_tui(
            store,
            read_only=read_only,
            host=host,
            port=port,
            warn=lambda m: click.echo(m, err=True),
            videos=source,
        )
        return
    from hvuaudit.tui.app import run  # textual is imported only here

    run(db, read_only=read_only, videos=source)


# ---------------------------------------------------------------- clips and their frames


@cli.group()
def clips():
    """The clips of an (action, tag) pair, as frames: what a person checks before trusting a count.

    \b
    Example:
      hvuaudit clips sheet --action skiing --tag ski_slope -o skiing.png
    """


@clips.command("sheet")
@click.option("--action", required=True, help="The action tag.")
@click.option("--tag", required=True, help="The other tag (a scene, an object, ...).")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="The picture to write (.png, .jpg or .webp).",
)
@click.option(
    "--limit", type=click.IntRange(1, 200), default=12, show_default=True, help="Clips on the sheet."
)
@click.option("--frames", type=click.IntRange(1, 32), default=6, show_default=True, help="Frames per clip.")
@click.option(
    "--height", type=click.IntRange(16, 720), default=96, show_default=True, help="Frame height in pixels."
)
@videos_source_options
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@db_option
def clips_sheet(action, tag, output, limit, frames, height, videos_dir, name_template, force, db):
    """A contact sheet: the first clips that carry both tags, a row of frames each.

    The clips are those of the TUI's clips screen (`hvuaudit sql clips_of_pair`), their files those of the
    scan (`videos scan`) or of --videos. A clip without a usable file gets its reason in place of its
    frames; when no clip has one, nothing is written (exit 3).

    \b
    Examples:
      hvuaudit clips sheet --action skiing --tag ski_slope -o skiing.png
      hvuaudit clips sheet --action skiing --tag snow --videos ~/hvu/videos -o skiing_snow.jpg
    """
    from hvuaudit.categories import with_article
    from hvuaudit.cooccurrence import clips_of_pair
    from hvuaudit.store import open_store, store_sources
    from hvuaudit.videos.frames import (
        NoVideo,
        clip_label,
        clip_strip,
        contact_sheet,
        prepare_lookup,
        sheet_size_problem,
    )
    from hvucontracts.files import refuse_overwriting, write_atomically

    check_new_file(output, "-o", force, suffixes=tuple(_IMAGE_FORMATS), example="sheet.png")
    image_format = _IMAGE_FORMATS[output.suffix.lower()]
    if problem := sheet_size_problem(limit, frames, height, image_format):
        raise InputError(
            f"-o {output}: {problem}", hint="ask for fewer --frames, --limit or --height, or write a .png"
        )
    with open_store(db, read_only=True) as con:
        refuse_overwriting(output, [source.path for source in store_sources(con)])
        category = _require_tags(con, action, tag)[action]
        if category != "action":
            raise InputError(
                f"--action {action!r} is {with_article(category)} tag, not an action",
                hint="give an action as --action and the other tag as --tag",
            )
        pairs = clips_of_pair(con, action, tag).head(limit)
        if not pairs.height:
            raise InputError(
                f"no clip carries both {action!r} and {tag!r}",
                hint=f"its scenes: hvuaudit sql top_scenes_of_action --param action={action}",
            )
        reason = prepare_lookup(con, source := _video_source(videos_dir, name_template))
        rows = []
        with progress_steps(pairs.height, "decoding frames") as step:
            for clip in pairs.iter_rows(named=True):
                strip = (
                    NoVideo(reason) if reason else clip_strip(con, clip, source, frames=frames, height=height)
                )
                rows.append((clip_label(clip), strip))
                step(clip["clip_id"])
    missing = [label.split()[0] + ": " + s.reason for label, s in rows if isinstance(s, NoVideo)]
    if len(missing) == len(rows):
        raise InputError(
            f"none of the {len(rows)} clip(s) of ({action}, {tag}) has a video to show: {missing[0]}",
            hint="check how the files are named (--name-template) and that they are directly in --videos"
            if videos_dir is not None
            else "scan the videos first (hvuaudit videos scan DIR), or give --videos DIR",
        )
    sheet = contact_sheet(f"{action} + {tag}: {len(rows)} clip(s), {source.describe()}", rows, height=height)
    write_atomically(output, lambda tmp: sheet.save(tmp, format=image_format))
    for line in missing:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"wrote {output} ({len(rows) - len(missing)} of {len(rows)} clip(s) with frames)", err=True)


# ---------------------------------------------------------------- video files


@cli.group()
def videos():
    """Real HVU video files: find them whatever their names, check them, prepare them for training.

    \b
    Examples:
      hvuaudit videos scan ~/hvu/videos --probe
      hvuaudit videos coverage --by action
      hvuaudit videos problems --kind broken
      hvuaudit videos forget ~/hvu/old_downloads
    """


COVERAGE_GROUPS = ("subset", "action", "scene")
# How many of the least covered actions and scenes `videos scan` prints (`videos coverage` lists all).
SHOWN_GROUPS = 10
SHOWN_PROBLEMS = 20


@videos.command("scan")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="DIR...")
@click.option(
    "--name-template",
    default=None,
    help="Also match the names this template gives (a preset or a format string, as for `split`).",
)
@click.option(
    "--probe", is_flag=True, help="Open every file not probed yet with PyAV (needs the [train] extra)."
)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Probe threads.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@db_option
def videos_scan(dirs, name_template, probe, workers, fmt, db):
    """Match the video files under DIR... to the store's clips and record them in the store.

    Every naming scheme of the download tools is tried (docs/videos.md); a rescan updates what
    changed only. Prints what was found, the coverage per subset (and the least covered actions
    and scenes), and the files and clips that need a look.

    \b
    Examples:
      hvuaudit videos scan ~/hvu/videos
      hvuaudit videos scan ~/hvu/train ~/hvu/val --probe --workers 4
      hvuaudit videos scan ~/hvu/clips --name-template '{youtube_id}/{start10}.mp4' --format json
    """
    from hvuaudit.store import open_store
    from hvuaudit.videos.scan import coverage, scan_videos, summarize, video_problems

    with open_store(db, read_only=False) as con:
        with file_progress("scanning") as advance:
            report = scan_videos(con, dirs, name_template=name_template, on_file=advance)
        probed = None
        if probe:
            from hvuaudit.videos.probe import probe_videos

            try:
                import av  # noqa: F401  (the probe needs PyAV; say so before any file is opened)
            except ModuleNotFoundError as exc:
                raise missing_extra(exc, "videos scan --probe") or exc from exc
            with file_progress("probing") as advance:
                probed = probe_videos(
                    con,
                    roots=report.roots,
                    workers=workers,
                    log=lambda message: click.echo(message, err=True),
                    on_file=advance,
                )
            report = summarize(con, report)  # the probe found broken and short files: count again
        problems = video_problems(con, report.roots)
        tables = {by: coverage(con, by) for by in COVERAGE_GROUPS}
    summary = report.as_json()
    if probed is not None:
        summary["probe"] = {
            "files": probed.files,
            "broken": probed.broken,
            "files_per_second": round(probed.rate, 1),
        }
    if fmt == "json":
        emit_json(
            {
                "scan": summary,
                "coverage": {by: frame.to_dicts() for by, frame in tables.items()},
                "problems": problems.to_dicts(),
            }
        )
        return
    _print_scan(summary, tables, problems)


def _print_scan(summary: dict, tables: dict, problems) -> None:
    import polars as pl

    changes = summary["changes"]
    skipped = [f"{summary['other_files']:,} other files left alone"]
    if summary["linked_folders"]:
        skipped.append(f"{summary['linked_folders']:,} link(s) to folders not followed")
    if summary["prepared_folders"]:
        skipped.append(f"{len(summary['prepared_folders'])} `videos prepare` folder(s) skipped")
    facts = {
        "video files": f"{summary['video_files']:,} ({'; '.join(skipped)})",
        "since the last scan": ", ".join(f"{n:,} {change}" for change, n in changes.items()),
        "matched to a clip": (
            f"{summary['matched_files']:,} files ({summary['unmatched_files']:,} match no clip)"
        ),
        "files per scheme": ", ".join(f"{scheme} {n:,}" for scheme, n in summary["by_scheme"].items())
        or "none",
        "clips with a file": f"{summary['clips_with_file']:,} of {summary['clips']:,}",
        "clips with a usable file": f"{summary['usable_clips']:,}",
    }
    if summary["name_template"]:
        facts["--name-template"] = summary["name_template"]
    if "probe" in summary:
        probe = summary["probe"]
        facts["probed now"] = (
            f"{probe['files']:,} files ({probe['broken']:,} broken), {probe['files_per_second']:,} files/s"
        )
    emit_table(
        pl.DataFrame({"fact": list(facts), "value": list(facts.values())}), "table", title="videos scan"
    )
    emit_table(tables["subset"], "table", title="coverage per subset")
    for by in ("action", "scene"):
        least = tables[by].sort(["share_usable", "clips"], descending=[False, True]).head(SHOWN_GROUPS)
        emit_table(least, "table", title=f"least covered {by}s (all: hvuaudit videos coverage --by {by})")
    if problems.height:
        if problems["root"].n_unique() == 1:  # one folder: its name is in the title, the paths are under it
            problems = problems.drop("root")
        emit_table(
            problems.head(SHOWN_PROBLEMS),
            "table",
            title=f"{problems.height:,} case(s) to look at"
            + (
                f", the first {SHOWN_PROBLEMS} (all: hvuaudit videos problems)"
                if problems.height > SHOWN_PROBLEMS
                else ""
            ),
        )


@contextmanager
def file_progress(label: str) -> Iterator[Callable[[int], None]]:
    """A counting progress bar on stderr when it is a terminal (its total is unknown until the end)."""
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda n: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn(label),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.advance(task, n)


@videos.command("forget")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="DIR...")
@db_option
def videos_forget(dirs, db):
    """Remove what `videos scan` recorded for folders (gone, moved, or scanned by mistake).

    The files themselves are not touched.

    \b
    Example:
      hvuaudit videos forget ~/hvu/old_downloads
    """
    from hvuaudit.store import open_store
    from hvuaudit.videos.scan import forget_roots

    with open_store(db, read_only=False) as con:
        left = forget_roots(con, dirs)
    click.echo(f"forgot {len(dirs)} folder(s); {left} scanned folder(s) left", err=True)


@videos.command("coverage")
@click.option("--by", type=click.Choice(COVERAGE_GROUPS), default="subset", show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@db_option
def videos_coverage(by, fmt, output, db):
    """How many clips have a (usable) video file, per subset, action or scene.

    \b
    Example:
      hvuaudit videos coverage --by action --format csv --output coverage.csv
    """
    from hvuaudit.store import open_store
    from hvuaudit.videos.scan import coverage, require_scans

    with open_store(db, read_only=True) as con:
        require_scans(con, "videos coverage")
        frame = coverage(con, by)
    emit_table(frame, fmt, output, title=f"coverage per {by}")


@videos.command("problems")
@click.option(
    "--kind",
    type=click.Choice(["unmatched", "two files", "two clips", "broken", "too short"]),
    default=None,
    help="Only this kind [default: all].",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@db_option
def videos_problems(kind, fmt, output, db):
    """Files that match no clip, clips with two files, names that fit two clips, broken and short files.

    \b
    Example:
      hvuaudit videos problems --kind broken --format csv --output broken.csv
    """
    import polars as pl

    from hvuaudit.store import open_store
    from hvuaudit.videos.scan import require_scans, video_problems

    with open_store(db, read_only=True) as con:
        require_scans(con, "videos problems")
        frame = video_problems(con)
    if kind is not None:
        frame = frame.filter(pl.col("kind") == kind)
    emit_table(frame, fmt, output, title="videos to look at")


@videos.command("prepare")
@click.argument("split_dir", type=click.Path(file_okay=False, path_type=Path), metavar="SPLIT_DIR")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to fill."
)
@click.option("--short-side", type=int, default=128, show_default=True, help="Pixels of the short side.")
@click.option("--fps", type=float, default=None, help="Frame rate of the output [default: the source's].")
@click.option("--gop", type=int, default=16, show_default=True, help="Frames between keyframes.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Encoding processes (0: this one).",
)
@click.option(
    "--videos", default=None, metavar="DIR", help="The downloads [default: the split's videos folder]."
)
@click.option("--name-template", default=None, help="How the downloads are named [default: the split's].")
def videos_prepare(split_dir, out, short_side, fps, gop, workers, videos, name_template):
    """Re-encode every clip of a split for training: cut to its times, scaled, frequent keyframes.

    Writes OUT/<clip_id>.mp4 and OUT/videos.json; `hvuaudit train --split SPLIT_DIR --videos OUT`
    then reads them. Rerun the same command to resume; failed clips are listed in
    OUT/prepare_problems.csv and skipped.

    \b
    Example:
      hvuaudit videos prepare out/si2 --out ~/hvu/prepared --short-side 128 --gop 16 --workers 4
    """
    from hvuaudit.videos.prepare import PrepareSettings, prepare_split

    try:
        import av  # noqa: F401  (the encoder runs in worker processes; say what is missing first)
    except ModuleNotFoundError as exc:
        raise missing_extra(exc, "videos prepare") or exc from exc
    with counted_progress("preparing") as (advance, set_total):
        report = prepare_split(
            split_dir,
            out,
            settings=PrepareSettings(short_side=short_side, fps=fps, gop=gop),
            videos=videos,
            name_template=name_template,
            workers=workers,
            on_clip=advance,
            on_total=set_total,
        )
    click.echo(
        f"{report.out}: {report.prepared:,} clip(s) prepared, {report.reused:,} already there, "
        f"{len(report.failed):,} failed (of {report.clips:,})",
        err=True,
    )
    for clip_id, source, problem in report.failed[:SHOWN_PROBLEMS]:
        click.echo(f"  failed: {clip_id} ({source}): {problem}", err=True)
    if len(report.failed) > SHOWN_PROBLEMS:
        click.echo(f"  … all {len(report.failed):,} in {report.out / 'prepare_problems.csv'}", err=True)
    click.echo(str(report.out))


@contextmanager
def counted_progress(label: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A progress bar with a total (set once known) on stderr when it is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield (lambda n: None), (lambda n: None)
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield (lambda n: bar.advance(task, n)), (lambda n: bar.update(task, total=n))


# ---------------------------------------------------------------- synthetic data


@cli.group(cls=LazyGroup, lazy=SYNTH_LAZY_COMMANDS)
def synth():
    """Generate synthetic HVU-format data (annotations, or a scene-biased video benchmark).

    \b
    Example:
      hvuaudit synth annotations --clips 500000 --out synth/
    """


@synth.command("annotations")
@click.option("--clips", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--val-fraction", type=float, default=0.1, show_default=True, help="Share written to HVU_Val_Synth.csv."
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace synthetic annotations already in --out (nothing else).")
def synth_annotations(clips, seed, val_fraction, out, force):
    """Write synthetic annotations + categories in exactly the HVU v1.0 format.

    \b
    Example:
      hvuaudit synth annotations --clips 500000 --seed 0 --out synth/
      hvuaudit ingest synth/HVU_*_Synth.csv --categories synth/HVU_Tags_Categories_Synth.csv
    """
    from hvuaudit.synthetic import SynthConfig, generate_annotations

    files = generate_annotations(
        SynthConfig(clips=clips, seed=seed, val_fraction=val_fraction), out, force=force
    )
    for path in [*files.annotations, files.categories]:
        click.echo(str(path))
    click.echo(f"wrote {files.clips:,} clips to {out}", err=True)


def _store_files(params: dict) -> list[Path]:
    """The store a command works on and its write-ahead log: never an output."""
    from hvuaudit.store import default_db_path

    db = Path(params["db"]) if params.get("db") else default_db_path()
    return [db, db.with_name(db.name + ".wal")]


protect_outputs(cli, _store_files)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hvuaudit")
