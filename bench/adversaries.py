"""Cost of a training step under each --adversary, relative to GRL (issue 22).

One process, one torch thread, the cpu-demo recipe's model (tiny backbone, clips of 8 frames of 32×32,
batch 64, 8 scenes, the object head too). Each round times one forward and backward pass and an Adam step
of every adversary in turn, so that the machine's noise falls on all of them alike; the median over the
rounds is reported, and its ratio to GRL's. Data loading and decoding are the same whatever the
adversary, so an epoch costs the same ratio or less (the demo's clips take about as long to load as
to train on; docs/demo.md).

    .venv/bin/python bench/adversaries.py                        # prints the section
    .venv/bin/python bench/adversaries.py --write BENCHMARKS.md  # and replaces its section
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

from benchmarks_md import replace_section

SECTION_TITLE = "## Adversaries: cost per training step (bench/adversaries.py)"
ADVERSARIES = ("grl", "negative", "dcorr", "cdcorr", "ensemble")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from trainer.losses import Objective
    from trainer.models import ModelConfig, build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    b, actions, scenes, objects = args.batch_size, 8, 8, 2
    video = torch.randn(b, 3, 8, 32, 32)
    batch = {
        "action": torch.randint(0, actions, (b,)),
        "scene": torch.nn.functional.one_hot(torch.randint(0, scenes, (b,)), scenes).float(),
        "object": torch.nn.functional.one_hot(torch.randint(0, objects, (b,)), objects).float(),
    }
    setups = {}
    for adversary in ADVERSARIES:
        copies = 4 if adversary == "ensemble" else 1
        config = ModelConfig("tiny", actions, scenes, objects, 64, True, True, scene_copies=copies)
        model = build_model(config)
        objective = Objective(lambda_=-1.0, gamma=1.0, adversary=adversary, adversary_heads=copies)
        setups[adversary] = (model, objective, torch.optim.Adam(model.parameters(), lr=1e-3))

    def step(adversary: str) -> float:
        model, objective, optimizer = setups[adversary]
        weights = objective.head_weights(1.0)
        started = time.perf_counter()
        outputs = model(video, {k: w.grl for k, w in weights.items()})
        total, _, _ = objective(outputs, batch, weights)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return time.perf_counter() - started

    load_before = os.getloadavg()[0]
    for adversary in ADVERSARIES:  # warm-up
        step(adversary)
    times: dict[str, list[float]] = {a: [] for a in ADVERSARIES}
    for _ in range(args.rounds):
        for adversary in ADVERSARIES:
            times[adversary].append(step(adversary))
    grl = statistics.median(times["grl"])
    lines = [
        SECTION_TITLE,
        "",
        f"{date.today()}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, one thread. The cpu-demo model (tiny backbone, 8×32×32 clips, batch "
        f"{b}, scene and object heads), one forward, backward and Adam step; median of {args.rounds} "
        f"interleaved rounds. Load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}.",
        "",
        "| --adversary | step | × GRL |",
        "|---|---:|---:|",
    ]
    for adversary in ADVERSARIES:
        median = statistics.median(times[adversary])
        label = f"{adversary} (K = 4)" if adversary == "ensemble" else adversary
        lines.append(f"| {label} | {1000 * median:.1f} ms | {median / grl:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, SECTION_TITLE, text)


if __name__ == "__main__":
    main()
