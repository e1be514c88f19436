"""Why the object head makes no difference on the built-in benchmark (issue 22): two measurements of a
finished full demo folder.

1. How well the features encode the sprite's shape (the object tag), with and without the object head:
   a fresh linear probe of the uniform set's features, 5-fold cross-validated (chance: 1 / 4 shapes).
2. What a shape could fix: the share of the scene-invariant errors that stay within the shape's family
   (translations, drawn as square or triangle, against the others, disk or plus). An error inside the
   family cannot be told from the shape; a model that ignored the shape would keep 3 of its 7 wrong
   choices inside the family (43%).

    .venv/bin/python bench/object_head.py demo/          # prints a markdown table
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

METHODS = ("baseline", "amt-no-object", "amt")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("demo", type=Path, help="a full demo folder (hvuaudit demo --out DIR)")
    args = parser.parse_args()

    import numpy as np
    import polars as pl
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hvudemo.videoset import TRANSLATIONS

    rows: dict[str, list[tuple[float, float, int]]] = {m: [] for m in METHODS}
    seeds = sorted(int(p.name[4:]) for p in args.demo.glob("seed*") if p.name[4:].isdigit())
    for seed in seeds:
        split = args.demo / f"seed{seed}" / "si2"
        shapes = dict(pl.read_csv(split / "eval_uniform.csv").select("clip_id", "objects").iter_rows())
        for method in METHODS:
            data = np.load(args.demo / "runs" / "main" / f"{method}_seed{seed}" / "features.npz")
            target = np.array([shapes[clip] for clip in data["uniform_clip_id"]])
            probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
            shape_probe = float(cross_val_score(probe, data["uniform_features"], target, cv=folds).mean())
            family = np.array([name in TRANSLATIONS for name in data["action_names"]])
            truth, predicted = data["val_action"], data["val_pred"]
            wrong = truth != predicted
            within = float((family[truth[wrong]] == family[predicted[wrong]]).mean()) if wrong.any() else 0.0
            rows[method].append((shape_probe, within, int(wrong.sum())))
    print(f"{len(seeds)} seed(s) of {args.demo}; mean ± std over the seeds\n")
    print("| run | shape probe (uniform) | scene-invariant errors | of them within the shape's family |")
    print("|---|---:|---:|---:|")
    for method, values in rows.items():
        probe, within, errors = zip(*values, strict=True)

        def ms(xs, scale=100):
            return (
                f"{scale * statistics.mean(xs):.1f} ± {scale * statistics.stdev(xs):.1f}"
                if len(xs) > 1
                else f"{scale * xs[0]:.1f}"
            )

        print(f"| {method} | {ms(probe)}% | {ms(errors, 1)} | {ms(within)}% |")


if __name__ == "__main__":
    main()
