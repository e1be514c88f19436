"""Benchmark of the exact blockwise dcorr² (hvueval/dcorr.py) against dcor, issue 8.

Same run, same data (d = 512 features, 248 imbalanced scenes, seed 0):
  - dcor (its scipy path) vs ours at n = 2k, 5k, 10k, and ours alone at 31k;
  - ours with numpy (OpenBLAS) and with torch (MKL) tiles, on 1 and on 2 threads;
  - achieved GFLOP/s against a 1-thread sgemm of tile shape measured in the same run.

Each case runs in a fresh child process (this file with --case), so the peak resident memory
it reports (getrusage max RSS) is that case's alone; thread counts are set there through
OMP/OPENBLAS/MKL_NUM_THREADS before numpy or torch load.

    .venv/bin/python bench/dcorr.py                       # prints the BENCHMARKS.md section
    .venv/bin/python bench/dcorr.py --write BENCHMARKS.md  # and replaces its "## dcorr²" section
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from benchmarks_md import replace_section

DIMENSIONS = 512
SCENES = 248
SECTION_TITLE = "## dcorr² (bench/dcorr.py)"


# --- child side: one case per process -----------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


def _make_data(n: int):
    """(n, 512) float64 features with a weak scene signal, (n,) scene ids with a long tail like HVU's."""
    import numpy as np

    rng = np.random.default_rng(0)
    weights = 1 / np.arange(1, SCENES + 1) ** 0.8
    scenes = rng.choice(SCENES, size=n, p=weights / weights.sum())
    features = rng.standard_normal((n, DIMENSIONS))
    centres = 0.2 * rng.standard_normal((SCENES, DIMENSIONS))
    for start in range(0, n, 4096):  # in chunks: a full-size temporary would inflate the peak RSS
        features[start : start + 4096] += centres[scenes[start : start + 4096]]
    return features, scenes


def _run_sgemm(case: dict) -> dict:
    """GFLOP/s of the (1024, 512) × (512, 1024) float32 product that every distance tile starts with."""
    import numpy as np

    rng = np.random.default_rng(0)
    left = rng.standard_normal((1024, DIMENSIONS), dtype=np.float32)
    right = rng.standard_normal((DIMENSIONS, 1024), dtype=np.float32)
    if case["library"] == "torch":
        import torch

        torch.set_num_threads(case["threads"])
        left, right = torch.from_numpy(left), torch.from_numpy(right)
        out = torch.empty(1024, 1024)

        def product():
            torch.mm(left, right, out=out)
    else:
        out = np.empty((1024, 1024), np.float32)

        def product():
            np.matmul(left, right, out=out)

    product()
    repeats, best = 40, float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            product()
        best = min(best, (time.perf_counter() - started) / repeats)
    return {"gflops": 2 * 1024 * 1024 * DIMENSIONS / best / 1e9}


def _run_dcorr(case: dict) -> dict:
    import numpy as np

    # libraries load first, so "over inputs" is the computation's own working memory
    if case["method"] == "dcor":
        import dcor

        # dcor 0.7 with array-api-compat >= 1.16 misses numpy arrays and falls back to an
        # n×n×d float64 broadcast; this restores its scipy path (what the issue measured).
        dcor.distances._can_be_numpy_double = lambda x: isinstance(x, np.ndarray) and x.dtype == np.float64
    else:
        if case["backend"] == "torch":
            import torch

            torch.set_num_threads(case["threads"])
        from hvueval.dcorr import distance_correlation_stats

    features, scenes = _make_data(case["n"])
    if case["method"] == "dcor":
        one_hot = np.eye(SCENES)[scenes]  # (n, 248): dcor needs the label matrix
        inputs_mb = _current_rss_mb()
        started = time.perf_counter()
        value = float(dcor.distance_correlation_sqr(features, one_hot))
        return {"seconds": time.perf_counter() - started, "dcorr2": value, "inputs_mb": inputs_mb}

    inputs_mb = _current_rss_mb()
    seconds = float("inf")
    for _ in range(case["repeats"]):  # best of: the machine is shared
        result = distance_correlation_stats(features, scenes, backend=case["backend"])
        seconds = min(seconds, result.seconds)
    return {
        "seconds": seconds,
        "dcorr2": result.dcorr2,
        "dcorr2_u": result.dcorr2_u,
        "tile_dtype": result.tile_dtype,
        "inputs_mb": inputs_mb,
    }


def run_case(case: dict) -> dict:
    outcome = _run_sgemm(case) if case["kind"] == "sgemm" else _run_dcorr(case)
    return {**outcome, "peak_mb": _peak_rss_mb()}


# --- parent side --------------------------------------------------------------------------


def _in_child(case: dict, timeout: float) -> dict:
    threads = str(case["threads"])
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    command = [sys.executable, __file__, "--case", json.dumps(case)]
    try:
        finished = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=True
        )
    except subprocess.TimeoutExpired:
        return {"timed_out": timeout}
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"case {case} failed:\n{exc.stderr}") from exc
    return json.loads(finished.stdout.splitlines()[-1])


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    import numpy
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores shared with other work; Python {platform.python_version()}, "
        f"numpy {numpy.__version__} (OpenBLAS), torch {torch.__version__} (MKL)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--write", type=Path, help="replace the dcorr² section of this markdown file")
    parser.add_argument(
        "--dcor-timeout", type=float, default=240, help="seconds before a dcor case is given up"
    )
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return

    load_before = os.getloadavg()
    started = time.perf_counter()
    sgemm = {
        (library, threads): _in_child({"kind": "sgemm", "library": library, "threads": threads}, 120)[
            "gflops"
        ]
        for library in ("numpy", "torch")
        for threads in (1, 2)
    }
    print(f"sgemm GFLOP/s: {sgemm}", file=sys.stderr)

    rows = []
    for n in (2000, 5000, 10000, 31000):
        reference = None
        if n <= 10000:
            case = {"kind": "dcorr", "method": "dcor", "n": n, "threads": 1}
            reference = _in_child(case, args.dcor_timeout)
            rows.append(("dcor", n, 1, reference))
            print(f"dcor n={n}: {reference}", file=sys.stderr)
        configurations = [("numpy", 1), ("torch", 1)]
        if n >= 10000:
            configurations += [("numpy", 2), ("torch", 2)]
        for backend, threads in configurations:
            case = {"kind": "dcorr", "method": "ours", "backend": backend, "n": n, "threads": threads}
            case["repeats"] = 1 if n > 10000 else 2
            outcome = _in_child(case, 300)
            if reference and "dcorr2" in reference and "dcorr2" in outcome:
                outcome["relative_error"] = abs(outcome["dcorr2"] / reference["dcorr2"] - 1)
            rows.append((f"ours, {backend}", n, threads, outcome))
            print(f"{backend} {threads}t n={n}: {outcome}", file=sys.stderr)
    section = _section(sgemm, rows, load_before, os.getloadavg(), time.perf_counter() - started)
    print(section)
    if args.write:
        replace_section(args.write, SECTION_TITLE, section)


def _section(sgemm: dict, rows: list, load_before: tuple, load_after: tuple, total_seconds: float) -> str:
    dcor_by_n = {n: outcome for name, n, _, outcome in rows if name == "dcor"}
    lines = [
        SECTION_TITLE,
        "",
        f"{date.today().isoformat()}. {_machine()}. d = {DIMENSIONS} float64 features with a weak scene "
        "signal, "
        f"{SCENES} scenes with a long tail, seed 0; the same data for every case. Each case runs in its own "
        "process: *peak RSS* is that process's maximum resident set (the numpy backend never imports torch, "
        "whose import alone is ~500 MB), *over inputs* subtracts its resident memory once the libraries were "
        "loaded and the inputs built (dcor's inputs include its (n, 248) one-hot matrix). Our times are the "
        "best of "
        "2 runs (1 at 31k) and include centring and sorting; one pass yields both the V and the U statistic, "
        "dcor's time is its V statistic alone. GFLOP/s counts the useful work n²·d (the sgemm of the "
        "upper-triangle tiles); its share is of the sgemm below with the same library and threads "
        "(below 2048 samples the tiles are float64, so that share understates them).",
        "",
        "sgemm of one (1024×512)·(512×1024) float32 tile, same run: "
        + ", ".join(
            f"{library} {threads} thread{'s' * (threads > 1)} {gflops:.0f} GFLOP/s"
            for (library, threads), gflops in sgemm.items()
        )
        + ".",
        "",
        "| method | n | threads | tiles | time | peak RSS | over inputs | GFLOP/s | share of sgemm "
        "| speed-up vs dcor | peak memory vs dcor | dcorr² (V) | rel. diff to dcor |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n, threads, outcome in rows:
        if "timed_out" in outcome:
            lines.append(
                f"| {name} | {n:,} | {threads} | | did not finish in {outcome['timed_out']:.0f} s |"
                + " |" * 8
            )
            continue
        extra_mb = outcome["peak_mb"] - outcome["inputs_mb"]
        tiles = outcome.get("tile_dtype", "(n×n float64)")
        cells = [
            name,
            f"{n:,}",
            str(threads),
            tiles,
            f"{outcome['seconds']:.2f} s",
            f"{outcome['peak_mb']:.0f} MB",
        ]
        cells.append(f"{extra_mb:.0f} MB")
        if name == "dcor":
            cells += ["", "", "", ""]
        else:
            gflops = n * n * DIMENSIONS / outcome["seconds"] / 1e9
            library = name.split(", ")[1]
            cells += [f"{gflops:.0f}", f"{gflops / sgemm[(library, threads)]:.0%}"]
            reference = dcor_by_n.get(n)
            if reference and "seconds" in reference:
                cells.append(f"{reference['seconds'] / outcome['seconds']:.0f}×")
                cells.append(f"{outcome['peak_mb'] / reference['peak_mb']:.2f}×")
            else:
                cells += ["", ""]
        cells.append(f"{outcome['dcorr2']:.6f}")
        relative_error = outcome.get("relative_error")
        cells.append("" if relative_error is None else f"{relative_error:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Threads: on this shared 2-core machine a second thread only pays when the other core is idle; "
        "when another process is busy, the 2-thread sgemm falls below the 1-thread one and so does dcorr². "
        "Compare them within one run. The library leaves thread counts to OMP_NUM_THREADS / "
        "OPENBLAS_NUM_THREADS; on CPU it uses the numpy backend, measured faster than torch on 1 thread "
        "and free of torch's import memory.",
        "",
        f"Load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f}; whole benchmark "
        f"{total_seconds / 60:.1f} min. No GPU in this session: the CUDA path (torch, 4096-row tiles, IEEE "
        "float32 matmuls forced) is written and tested only where a GPU exists (`test_cuda_matches_cpu`).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
