"""Click commands of the demo package: ``hvuaudit synth videos`` and ``hvuaudit demo``.

Loaded lazily by ``hvuaudit`` (``LAZY_COMMANDS`` and ``SYNTH_LAZY_COMMANDS`` in
hvuaudit/cli.py). Each command parses its options, calls one function of
:mod:`hvudemo.videoset` or :mod:`hvudemo.pipeline` and prints what it wrote. The
parent process never imports torch: training runs in worker processes.
"""

from __future__ import annotations

from pathlib import Path

import click

from hvudemo.videoset import OBJECT_SCHEMES


@click.command("videos")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--clips", type=int, default=3000, show_default=True, help="Biased training clips (subset train)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--test-clips",
    type=int,
    default=None,
    help="Clips of the rare pairs (also subset train) [default: 0.4 × clips].",
)
@click.option(
    "--indist-clips",
    type=int,
    default=None,
    help="Held-out biased clips (subset indist) [default: 0.267 × clips].",
)
@click.option(
    "--uniform-clips",
    type=int,
    default=None,
    help="Scene independent of action (subset uniform) [default: clips / 3].",
)
@click.option(
    "--control-clips",
    type=int,
    default=None,
    help="Random scenes, for the learnability control (subset control; 0 = none) "
    "[default: clips + test clips].",
)
@click.option(
    "--dominant",
    type=float,
    default=0.8,
    show_default=True,
    help="Share of an action's clips in its dominant scene.",
)
@click.option(
    "--seen-scenes",
    type=int,
    default=3,
    show_default=True,
    help="Scenes each action is seen with in training.",
)
@click.option(
    "--object-share",
    type=float,
    default=0.9,
    show_default=True,
    help="Share of an action's clips with its main shape.",
)
@click.option(
    "--objects",
    type=click.Choice(OBJECT_SCHEMES),
    default="family",
    show_default=True,
    help="How the shape follows the action: one bit of it (translations or not), or one shape per action.",
)
@click.option("--frames", type=int, default=8, show_default=True)
@click.option("--size", type=int, default=32, show_default=True, help="Frame width and height in pixels.")
@click.option("--sprite", type=int, default=8, show_default=True, help="Sprite side in pixels.")
@click.option("--speed", type=int, default=2, show_default=True, help="Pixels per frame of the translations.")
@click.option(
    "--noise",
    type=float,
    default=0.04,
    show_default=True,
    help="Per-frame pixel noise (std, intensities in [0, 1]).",
)
@click.option(
    "--texture", type=float, default=0.12, show_default=True, help="Amplitude of the scene textures."
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Processes that render clips."
)
@click.option("--force", is_flag=True, help="Replace a benchmark already in --out.")
def synth_videos(out, workers, force, **options):
    """Write the scene-biased video benchmark: mp4 clips plus HVU-format CSVs (see docs/demo.md).

    Subsets: train (HVU_Train_Benchmark.csv: the biased pairs and the rare pairs SI-2 holds
    out), indist, uniform and control (ingest those with --subset NAME). Clips are named for
    the mmaction template; benchmark.json describes everything and gives the SI-2
    --val-fraction that reproduces the biased/rare partition.

    \b
    Example:
      hvuaudit synth videos --out bench --clips 3000 --seed 0
      hvuaudit ingest bench/HVU_Train_Benchmark.csv --categories bench/HVU_Tags_Categories_Benchmark.csv
      hvuaudit ingest bench/Benchmark_uniform.csv --subset uniform
    """
    from hvudemo.videoset import VideoSetConfig, generate_video_set

    files = generate_video_set(VideoSetConfig(**options), out, workers=workers, force=force)
    for path in [*files.annotations.values(), files.categories, files.manifest]:
        click.echo(str(path))
    click.echo(
        f"wrote {files.clips:,} clips to {files.videos} (SI-2 --val-fraction {files.si2_val_fraction})",
        err=True,
    )


@click.command()
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True
)
@click.option("--quick", is_flag=True, help="1 seed, 2,000 clips, 10 epochs, baseline and AMT only.")
@click.option(
    "--seeds", type=click.IntRange(min=1), default=None, help="Paired seeds [default: 3, or 1 with --quick]."
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Training processes at once (one torch thread each).",
)
@click.option(
    "--objects",
    type=click.Choice(OBJECT_SCHEMES),
    default="family",
    show_default=True,
    help="The benchmark's shapes: one bit of the action, or one shape per action (the object head's study).",
)
@click.option("--force", is_flag=True, help="Start over instead of reusing finished steps.")
def demo(out, quick, seeds, jobs, objects, force):
    """Run the whole pipeline on the built-in scene-biased benchmark and explain it in REPORT.md.

    Generates clips, ingests them, runs NCA, builds the SI-2 split, trains baseline, MTL,
    AMT without object and AMT on paired seeds, evaluates them and writes Table 2 and
    OUT/REPORT.md (needs the [train] extra). A rerun reuses finished steps. How long it
    takes, measured, is in docs/demo.md.

    \b
    Example:
      hvuaudit demo --quick
      hvuaudit demo --out demo --seeds 3
    """
    from hvudemo.pipeline import run_demo
    from hvudemo.report import results_table
    from hvudemo.settings import demo_settings

    settings = demo_settings(quick=quick, seeds=seeds, objects=objects)
    result = run_demo(
        out, settings, jobs=jobs, force=force, log=lambda message: click.echo(message, err=True)
    )
    click.echo("\n".join(results_table(settings, result.summary)))
    click.echo(f"the numbers explained: {result.report}", err=True)
