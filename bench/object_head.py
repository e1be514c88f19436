"""Why the object head makes no difference on the built-in benchmark, and whether it does where the shape
names the action (issue 22): measurements of a finished demo folder.

1. Scene-invariant top-1 of baseline, AMT without and with the object head, and the paired difference
   the object head makes (AMT minus AMT w/o object, seed by seed).
2. How well the features encode the sprite's shape (the object tag), with and without the object head:
   a fresh linear probe of the uniform set's features, 5-fold cross-validated.
3. What a shape could fix: the share of the scene-invariant errors on a clip that shows its action's
   main shape (benchmark.json) when the predicted action's main shape is another one. A model that read
   the shape would not make those errors; the others the shape cannot fix.

    .venv/bin/python bench/object_head.py demo/          # prints a markdown table

With ``--train`` it first trains what the table needs into the folder, with the full demo's recipe
(3 seeds, 3,000 clips, 12 epochs): baseline, AMT without and with the object head, nothing else (no
control, no sweep, no other adversary; about 6.5 minutes on 2 cores). ``--objects per-action`` gives
every action its own shape (docs/demo.md, "The object head"). The folder is a demo folder: its
REPORT.md has the rest.

    .venv/bin/python bench/object_head.py /tmp/synergy --train --objects per-action
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from hvudemo.videoset import OBJECT_SCHEMES

METHODS = ("baseline", "amt-no-object", "amt")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("demo", type=Path, help="a full demo folder (hvuaudit demo --out DIR)")
    parser.add_argument("--train", action="store_true", help="train the three methods into DEMO first")
    parser.add_argument(
        "--objects", default="family", choices=OBJECT_SCHEMES, help="--train: the benchmark's object scheme"
    )
    parser.add_argument("--jobs", type=int, default=2, help="--train: training processes at once")
    parser.add_argument(
        "--force", action="store_true", help="--train: start DEMO over (hvuaudit demo --force)"
    )
    args = parser.parse_args()
    if args.train:
        from hvudemo.pipeline import run_demo
        from hvudemo.settings import demo_settings

        full = demo_settings(quick=False, seeds=None, objects=args.objects)
        settings = replace(full, methods=METHODS, sensitivity=False, control=False, probe_curves=False)
        run_demo(
            args.demo,
            settings,
            jobs=args.jobs,
            force=args.force,
            log=lambda message: print(message, file=sys.stderr),
        )

    import numpy as np
    import polars as pl
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows: dict[str, list[tuple[float, float, int, float]]] = {m: [] for m in METHODS}
    seeds = sorted(int(p.name[4:]) for p in args.demo.glob("seed*") if p.name[4:].isdigit())
    schemes = set()
    for seed in seeds:
        benchmark = json.loads((args.demo / f"seed{seed}" / "benchmark" / "benchmark.json").read_text())
        schemes.add(benchmark["config"].get("objects", "family"))
        main_shape = {action: facts["main_object"] for action, facts in benchmark["actions"].items()}
        split = args.demo / f"seed{seed}" / "si2"
        shapes = {
            name: dict(pl.read_csv(split / file).select("clip_id", "objects").iter_rows())
            for name, file in (("uniform", "eval_uniform.csv"), ("val", "val.csv"))
        }
        for method in METHODS:
            data = np.load(args.demo / "runs" / "main" / f"{method}_seed{seed}" / "features.npz")
            target = np.array([shapes["uniform"][clip] for clip in data["uniform_clip_id"]])
            probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
            shape_probe = float(cross_val_score(probe, data["uniform_features"], target, cv=folds).mean())
            names = [str(n) for n in data["action_names"]]
            truth, predicted = data["val_action"], data["val_pred"]
            wrong = np.flatnonzero(truth != predicted)
            fixable = [
                shapes["val"][str(data["val_clip_id"][i])] == main_shape[names[truth[i]]]
                and main_shape[names[predicted[i]]] != main_shape[names[truth[i]]]
                for i in wrong
            ]
            share = float(np.mean(fixable)) if len(wrong) else 0.0
            rows[method].append((float((truth == predicted).mean()), shape_probe, len(wrong), share))

    def ms(xs, scale=100.0, digits=1):
        if len(xs) > 1:
            return f"{scale * statistics.mean(xs):.{digits}f} ± {scale * statistics.stdev(xs):.{digits}f}"
        return f"{scale * xs[0]:.{digits}f}"

    print(
        f"{len(seeds)} seed(s) of {args.demo} (objects: {', '.join(sorted(schemes))}); "
        "mean ± std over the seeds\n"
    )
    print(
        "| run | scene-invariant top-1 | shape probe (uniform) | scene-invariant errors "
        "| of them, on a clip whose shape names its action apart |"
    )
    print("|---|---:|---:|---:|---:|")
    for method, values in rows.items():
        top1, probe, errors, share = zip(*values, strict=True)
        print(f"| {method} | {ms(top1)}% | {ms(probe)}% | {ms(errors, 1, 0)} | {ms(share)}% |")
    paired = [a[0] - b[0] for a, b in zip(rows["amt"], rows["amt-no-object"], strict=True)]
    print(f"\nthe object head, AMT minus AMT w/o object, scene-invariant top-1: {ms(paired)} points (paired)")


if __name__ == "__main__":
    main()
