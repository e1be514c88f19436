"""Click commands of the evaluator: ``eval``, ``dcorr``, ``report``, ``plot curves|tsne`` and ``explain``.

Loaded lazily by ``hvuaudit`` (LAZY_COMMANDS in hvuaudit/cli.py) and by ``python -m
trainer``. Each command parses its options, calls one function of the evaluator and
prints; errors carry their exit code (3 bad input, 4 a missing artefact such as
eval.json). The modules that do the work are imported inside the command bodies, so
``--help`` stays fast and ``report``, ``dcorr``, ``plot curves`` and ``plot tsne`` never
import torch (``eval`` and ``explain`` run models, so they do). Never imports ``hvuaudit``;
never imports torch at import time.
"""

from __future__ import annotations

from pathlib import Path

import click

from trainer.config import DEVICES  # torch-free

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
RUNS = click.argument("run_dirs", nargs=-1, required=True, metavar="RUN...", type=click.Path(path_type=Path))


@click.group(context_settings=CONTEXT)
def plot() -> None:
    """Figures from run folders: training curves (Fig. 4) and feature t-SNE (Fig. 5).

    See docs/evaluator.md. Grad-CAM saliency on clips is `hvuaudit explain`.

    \b
    Example:
      hvuaudit plot curves runs/si2_baseline runs/si2_amt -o figs/curves.png
      hvuaudit plot tsne runs/si2_baseline runs/si2_amt --color scene -o figs/tsne_scene.png
    """


@plot.command(context_settings=CONTEXT)
@RUNS
@click.option(
    "-o",
    "--output",
    default="curves.png",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Accuracy figure; the per-head losses go next to it as NAME_losses.png.",
)
def curves(run_dirs: tuple[Path, ...], output: Path) -> None:
    """Action and scene-head accuracy per epoch, train and the selection set, one panel per run (Fig. 4).

    Read from each RUN/metrics.jsonl. A second figure, NAME_losses.png, shows the raw loss of
    every head. Prints the two paths.

    \b
    Example:
      hvuaudit plot curves runs/si2_amt -o curves.png
      hvuaudit plot curves runs/si2_baseline runs/si2_amt runs/si2_mtl -o figs/fig4.png
    """
    from hvueval.curves import plot_curves

    for path in plot_curves(run_dirs, output):
        click.echo(str(path))


@plot.command(context_settings=CONTEXT)
@RUNS
@click.option("--color", type=click.Choice(["action", "scene"]), default="action", show_default=True)
@click.option("--set", "set_name", default="val", show_default=True, help="Evaluation set of features.npz.")
@click.option(
    "--max-points",
    type=int,
    default=5000,
    show_default=True,
    help="Above this many clips, embed a seeded random subsample of this size (said on the figure).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the subsample and t-SNE.")
@click.option(
    "-o", "--output", default="tsne.png", show_default=True, type=click.Path(dir_okay=False, path_type=Path)
)
def tsne(
    run_dirs: tuple[Path, ...], color: str, set_name: str, max_points: int, seed: int, output: Path
) -> None:
    """2-D t-SNE of the features saved by `hvuaudit eval`, runs side by side (Fig. 5).

    Reads RUN/features.npz; every panel shows the same clips. The same seed gives the same
    picture. Prints the path.

    \b
    Example:
      hvuaudit plot tsne runs/si2_baseline runs/si2_amt --color scene -o tsne_scene.png
      hvuaudit plot tsne runs/si2_amt --color action --max-points 2000 --seed 1 -o tsne.png
    """
    from hvueval.tsne import plot_tsne

    path, embedding = plot_tsne(
        run_dirs, output, color=color, set_name=set_name, max_points=max_points, seed=seed
    )
    if embedding.n_shown < embedding.n_available:
        click.echo(
            f"note: embedded a random {embedding.n_shown} of {embedding.n_available} clips (--max-points)",
            err=True,
        )
    click.echo(str(path))


CHECKPOINT = click.option(
    "--checkpoint",
    default="best",
    show_default=True,
    metavar="best|last|PATH",
    help="best.pt (chosen on the split's selection set), checkpoint.pt (the last epoch) or a checkpoint "
    "file.",
)


@click.command(context_settings=CONTEXT)
@RUNS
@click.option(
    "--clips",
    "clip_specs",
    multiple=True,
    metavar="ID[,ID...]",
    help="Clip ids (the split CSVs' clip_id); repeat or separate with commas.",
)
@click.option("--target", type=click.Choice(["action", "scene"]), default="action", show_default=True)
@click.option(
    "--class-of",
    type=click.Choice(["predicted", "true"]),
    default="predicted",
    show_default=True,
    help="Explain the class each run predicts, or the clip's true class.",
)
@CHECKPOINT
@click.option("--videos", metavar="DIR", help="[default: $HVUAUDIT_VIDEOS, the run's, the manifest's]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    default="gradcam",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for CLIP.png and CLIP.gif (created when missing).",
)
def explain(
    run_dirs: tuple[Path, ...],
    clip_specs: tuple[str, ...],
    target: str,
    class_of: str,
    checkpoint: str,
    videos: str | None,
    device: str,
    out_dir: Path,
) -> None:
    """Grad-CAM saliency of a run's action (or scene) score on clips (Fig. 6).

    For each clip: OUT/CLIP.png, a strip of frames with the heatmap over them, and OUT/CLIP.gif,
    the whole clip animated. With two runs (say baseline and AMT) they are shown one above the
    other, each with its predicted and true labels. Prints the paths.

    \b
    Example:
      hvuaudit explain runs/si2_baseline runs/si2_amt --clips gD_G1b0wV5I_101.5_103.5 -o figs/gradcam
      hvuaudit explain runs/si2_amt --clips v000,v001 --target scene --class-of true -o out/
    """
    from hvueval.gradcam import explain_clips

    clip_ids = [c.strip() for spec in clip_specs for c in spec.split(",") if c.strip()]
    paths = explain_clips(
        run_dirs,
        clip_ids,
        out_dir,
        target=target,
        class_of=class_of,
        checkpoint=checkpoint,
        videos=videos,
        device=device,
    )
    for path in paths:
        click.echo(str(path))


@click.command("eval", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", metavar="RUN")
@CHECKPOINT
@click.option("--videos", metavar="DIR", help="[default: $HVUAUDIT_VIDEOS, the run's, the manifest's]")
@click.option("--sets", metavar="A,B", help="Evaluation sets [default: all of the split's, val first].")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--batch-size", type=int, help="[default: the run's]")
@click.option("--workers", type=int, help="[default: the run's]")
@click.option("--threads", type=int, help="torch CPU threads [default: torch's]")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def eval_command(
    run_dir: str,
    checkpoint: str,
    videos: str | None,
    sets: str | None,
    device: str,
    batch_size: int | None,
    workers: int | None,
    threads: int | None,
    fmt: str,
) -> None:
    """Evaluate a run: writes RUN/eval.json and RUN/features.npz, prints the metrics.

    \b
    Examples:
      hvuaudit eval runs/si2_amt_r3d18_seed0
      hvuaudit eval runs/si2_amt_r3d18_seed0 --checkpoint last --format json
    """
    import json

    from hvueval.evaluate import evaluate_run

    doc = evaluate_run(
        run_dir,
        checkpoint=checkpoint,
        videos=videos,
        sets=[s.strip() for s in sets.split(",") if s.strip()] if sets else None,
        device=device,
        batch_size=batch_size,
        workers=workers,
        threads=threads,
        log=lambda m: click.echo(m, err=True),
    )
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    cols = (
        "n",
        "top1",
        "top1_any",
        "top5",
        "mean_class_acc",
        "scene_acc",
        "object_map",
        "dcorr2",
        "unseen_pair_acc",
    )
    click.echo("\t".join(("set", *cols)))
    for name, m in doc["sets"].items():
        cells = [
            "-" if m[c] is None else (f"{m[c]:.4f}" if isinstance(m[c], float) else str(m[c])) for c in cols
        ]
        click.echo("\t".join([name, *cells]))


@click.command()
@click.option(
    "--features",
    "features_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="(n, d) features: .npy, or .parquet with one list/array column or one numeric column per dimension.",
)
@click.option(
    "--labels",
    "labels_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="CSV with a header and one label per row, in the features' row order; 'a|b' cells are multi-hot.",
)
@click.option(
    "--label-column",
    default="scene",
    show_default=True,
    help="Column of --labels to use (continuous: one or more, a,b,c).",
)
@click.option(
    "--y-kind",
    type=click.Choice(["categorical", "continuous"]),
    default=None,
    help="categorical: each value a class ('a|b' multi-hot); continuous: real values, Euclidean distances "
    "as dcor [default: categorical, and real numbers that are not whole are refused].",
)
@click.option(
    "--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--device", default="cpu", show_default=True, help="cpu, or cuda[:N] to compute on a GPU.")
def dcorr(
    features_path: str,
    labels_path: str,
    label_column: str,
    y_kind: str | None,
    output_format: str,
    device: str,
) -> None:
    """Exact squared distance correlation (V and U statistics) between features and labels.

    0 means the features carry no information about the labels. Computed blockwise: memory
    stays O(n·d), so n = 31k takes seconds. `seconds` is the computation time.

    \b
    Example:
      hvuaudit dcorr --features runs/amt/features.npy --labels val_scenes.csv --format json
      hvuaudit dcorr --features feats.parquet --labels val.csv --label-column scenes
      hvuaudit dcorr --features feats.npy --labels depth.csv --label-column depth --y-kind continuous
    """
    import json
    from pathlib import Path

    from hvueval.dcorr import read_and_measure

    result = read_and_measure(
        Path(features_path), Path(labels_path), label_column=label_column, device=device, y_kind=y_kind
    )
    if output_format == "json":
        payload = {
            "n": result.n,
            "dcorr2": result.dcorr2,
            "dcorr2_u": result.dcorr2_u,
            "seconds": result.seconds,
            # what was measured: the labels' kind and column(s)
            "y_kind": y_kind or "categorical",
            "label_column": label_column,
        }
        click.echo(json.dumps(payload))
        return
    click.echo(f"{'n':<10}{'dcorr²':<12}{'dcorr²_u':<12}seconds")
    click.echo(f"{result.n:<10}{result.dcorr2:<12.6f}{result.dcorr2_u:<12.6f}{result.seconds:.2f}")


@click.command()
@click.argument("run_folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["markdown", "csv", "json"]),
    default="markdown",
    show_default=True,
)
@click.option("--set", "eval_set", default="val", show_default=True, help="Which set of eval.json to report.")
def report(run_folders: tuple[str, ...], output_format: str, eval_set: str) -> None:
    """Rebuild the paper's Table 2 from run folders: accuracy and dcorr² per split variant.

    Runs that differ only in their seed are one row, as mean ± std over the seeds (their count
    in parentheses). Runs without eval.json are listed as not evaluated. A folder that holds
    run folders stands for all of them.

    \b
    Example:
      hvuaudit report runs/*
      hvuaudit report runs/ --format csv > table2.csv
      hvuaudit report runs/* --set test --format json
    """
    from pathlib import Path

    from hvucontracts.runfolder import find_runs
    from hvueval.report import build_report, render_report

    table = build_report(find_runs([Path(folder) for folder in run_folders]), eval_set=eval_set)
    for note in table.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(render_report(table, output_format), nl=False)
