"""Click commands for the paper's figures: ``hvuaudit plot curves|tsne`` and ``hvuaudit explain``.

Loaded lazily by ``hvuaudit`` (LAZY_COMMANDS in hvuaudit/cli.py). Each command parses its
options, calls one function of :mod:`trainer.figures` and prints the paths it wrote on
stdout; errors of the trainer family carry their exit code (3 bad input, 4 a missing
artefact such as eval.json). trainer.figures (torch, matplotlib) is imported inside the
command bodies so ``--help`` stays fast. Never imports ``hvuaudit``.
"""

from __future__ import annotations

from pathlib import Path

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
RUNS = click.argument("run_dirs", nargs=-1, required=True, metavar="RUN...", type=click.Path(path_type=Path))


@click.group(context_settings=CONTEXT)
def plot() -> None:
    """Figures from run folders: training curves (Fig. 4) and feature t-SNE (Fig. 5).

    See README.md, section 7. Grad-CAM saliency on clips is `hvuaudit explain`.

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
    """Action and scene-head accuracy per epoch, train and val, one panel per run (Fig. 4).

    Read from each RUN/metrics.jsonl. A second figure, NAME_losses.png, shows the raw loss of
    every head. Prints the two paths.

    \b
    Example:
      hvuaudit plot curves runs/si2_amt -o curves.png
      hvuaudit plot curves runs/si2_baseline runs/si2_amt runs/si2_mtl -o figs/fig4.png
    """
    from trainer.figures import plot_curves

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
    from trainer.figures import plot_tsne

    path, embedding = plot_tsne(
        run_dirs, output, color=color, set_name=set_name, max_points=max_points, seed=seed
    )
    if embedding.n_shown < embedding.n_available:
        click.echo(
            f"note: embedded a random {embedding.n_shown} of {embedding.n_available} clips (--max-points)",
            err=True,
        )
    click.echo(str(path))


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
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
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
    from trainer.figures import explain_clips

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
