"""The paper's figures from run folders: training curves (Fig. 4), feature t-SNE (Fig. 5), Grad-CAM (Fig. 6).

Last step of the trainer, next to the report: it reads what ``hvuaudit train`` and
``hvuaudit eval`` left in a run folder and draws pictures of it.

- Curves read ``metrics.jsonl`` (one line per epoch).
- The t-SNE reads ``features.npz`` (written by ``hvuaudit eval``).
- Grad-CAM rebuilds the model from a checkpoint and decodes clips with the trainer's own
  data code, so a clip is cropped and normalised exactly as in evaluation.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot, no
global backend) and written atomically: a temporary file, then ``os.replace``. Image
sizes are set in pixels, so a figure's size follows from its layout alone. It never
changes a run folder and never imports ``hvuaudit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from hvucontracts import runfolder
from hvucontracts.errors import ConflictError, HvuError, SystemRefusal
from hvueval.curves import plot_curves
from hvueval.plotting import DEFAULT_MAX_POINTS, _stderr, save_figure
from hvueval.tsne import RunFeatures, compute_tsne, draw_tsne, load_features


# --------------------------------------------------------------------------- all of them, for reports
def contrasting_clips(first: RunFeatures, second: RunFeatures | None, n: int) -> list[str]:
    """Up to ``n`` clip ids worth explaining: where the first run is wrong and the second right,
    then where the first is wrong, then the first clips of the set."""
    preferred: list[str] = []
    if second is not None:
        right_in_second = {
            c for c, a, p in zip(second.clip_id, second.action, second.pred, strict=True) if a == p
        }
        preferred += [
            c
            for c, a, p in zip(first.clip_id, first.action, first.pred, strict=True)
            if a != p and c in right_in_second
        ]
    preferred += [c for c, a, p in zip(first.clip_id, first.action, first.pred, strict=True) if a != p]
    preferred += list(first.clip_id)
    return list(dict.fromkeys(preferred))[:n]


def write_run_figures(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    gradcam_clips: int = 2,
    videos: str | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Every figure the runs allow, into ``out_dir``, for a report to embed; returns the files written.

    - ``curves.png`` and ``curves_losses.png`` from the runs that have a metrics.jsonl;
    - ``tsne_action.png`` and ``tsne_scene.png`` from the runs that have features.npz (val set);
    - ``gradcam/CLIP.png|gif`` for ``gradcam_clips`` clips, with the first two evaluated runs
      side by side (e.g. baseline and AMT), chosen where the first is wrong and the second right.

    A figure whose inputs are missing is skipped with a note on ``log``, never an error:
    a report shows what there is.
    """
    log = log or _stderr
    out_dir = Path(out_dir)
    runs = [Path(r) for r in run_dirs]
    written: list[Path] = []
    with_metrics = [r for r in runs if (r / runfolder.METRICS).is_file()]
    for r in sorted(set(runs) - set(with_metrics)):
        log(f"note: {r} has no metrics.jsonl; it is left out of the curves")
    if with_metrics:
        written += plot_curves(with_metrics, out_dir / "curves.png")
    evaluated = [r for r in runs if (r / runfolder.EVAL).is_file() and (r / runfolder.FEATURES).is_file()]
    for r in sorted(set(runs) - set(evaluated)):
        log(f"note: {r} has no eval.json/features.npz (run `hvuaudit eval {r}`); it is left out of the t-SNE")
    if not evaluated:
        return written
    embedding = compute_tsne(evaluated, max_points=max_points, seed=seed)  # the slow part, done once
    for color in ("action", "scene"):
        written.append(save_figure(draw_tsne(embedding, color), out_dir / f"tsne_{color}.png"))
    if gradcam_clips > 0:
        pair = evaluated[:2]
        features = [load_features(r) for r in pair]
        clips = contrasting_clips(features[0], features[1] if len(features) > 1 else None, gradcam_clips)
        from hvueval.gradcam import explain_clips  # torch: only when Grad-CAM figures are asked for

        try:
            written += explain_clips(pair, clips, out_dir / "gradcam", videos=videos)
        except (SystemRefusal, ConflictError):
            raise  # a full disk or an output that may not be replaced is the user's to hear about
        except HvuError as exc:  # a problem with the inputs: typically the videos are not on this machine
            log(f"note: no Grad-CAM figures: {exc}")
    return written
