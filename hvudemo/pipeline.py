"""``hvuaudit demo``: the whole pipeline, end to end, on the built-in scene-biased benchmark.

It calls the same functions as the commands, in pipeline order, once per seed
(the data seed equals the run seed, so methods are compared on paired seeds):

1. generate the clips (:mod:`hvudemo.videoset`, ``hvuaudit synth videos``);
2. ingest them (:func:`hvuaudit.ingest.ingest`);
3. NCA and task roles → ``tasks.json`` (:mod:`hvuaudit.nca`);
4. the SI-2 split, with the in-distribution and uniform subsets as extra
   evaluation sets, and its verification (:mod:`hvuaudit.splits`);
5. training of baseline, MTL, AMT without object and AMT (plus a
   learnability control and a sensitivity sweep) with :func:`trainer.train.train`;
6. evaluation with :func:`hvueval.evaluate.evaluate_run`, a linear scene probe
   and the dcorr² floor on the uniform set;
7. Table 2 with :mod:`hvueval.report`, and ``REPORT.md`` in plain words.

Every step reuses what a previous call finished (``--force`` starts over).
Training runs in worker processes with one torch thread each; this process
never imports torch (the trainer is imported inside the workers only), and
the report reads JSON.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, cast

from hvuaudit.errors import ConflictError, InputError
from hvucontracts import runfolder
from hvucontracts.files import (
    adopt_files,
    check_replaceable,
    read_json,
    read_owner_marker,
    remove_owned,
    write_json_atomically,
    write_owner_marker,
)
from hvucontracts.process import die_with_parent
from hvucontracts.splitfolder import DEFAULT_TEMPLATE, MANIFEST, read_manifest
from hvudemo.analysis import pct, probe_features, summarise
from hvudemo.report import draw_probe_curves, write_report
from hvudemo.settings import (
    ADVERSARY_METHODS,
    DEMO_FORMAT,
    DEMO_KIND,
    LAMBDA_GRID,
    METHOD_NAMES,
    NCA_THRESHOLD,
    PENALTY_METHODS,
    SELECTION_TOLERANCE,
    TRAINED_AS,
    DemoError,
    DemoResult,
    DemoSettings,
    Log,
    TrainJob,
    seed_dir,
)
from hvudemo.videoset import (
    ADDED_KNOBS,
    VideoSetConfig,
    generate_video_set,
    read_video_set,
    require_modules,
)

# ----------------------------------------------------------------------------- the pipeline


def run_demo(
    out: Path | str, settings: DemoSettings, *, jobs: int = 2, force: bool = False, log: Log = print
) -> DemoResult:
    """Run (or finish) the demo in ``out`` and write ``out/REPORT.md``."""
    started = time.perf_counter()
    out = Path(out)
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1 (got {jobs})")
    require_modules("av", "torch", "sklearn")
    _prepare_out(out, settings, force=force)

    def step(number: int, title: str):
        return _step(log, number, title, after=lambda: _adopt_outputs(out, settings))

    mode = "quick" if settings.quick else "full"
    log(
        f"hvuaudit demo ({mode}): {len(settings.seeds)} seed(s), {settings.clips:,} biased training clips, "
        f"{settings.epochs} epochs, {jobs} training process(es) → {out}/ "
        "(how long it takes: docs/demo.md, Measured)"
    )

    facts: dict[int, dict] = {seed: {} for seed in settings.seeds}
    with step(1, "generate the clips"):
        for seed in settings.seeds:
            facts[seed]["benchmark"] = _generate(out, settings, seed, jobs, log)
    with step(2, "ingest them into a store"):
        for seed in settings.seeds:
            _ingest(out, seed, facts[seed]["benchmark"], log)
    with step(3, "NCA: which categories are necessary → task roles"):
        for seed in settings.seeds:
            facts[seed]["nca"] = _nca(out, seed, log)
    with step(4, "SI-2 split (and the control split)"):
        for seed in settings.seeds:
            facts[seed]["split"] = _split(out, settings, seed, facts[seed]["benchmark"], log)
    grid = plan_lambda_jobs(out, settings)
    with step(5, f"train and (6) evaluate {len(grid) + len(plan_jobs(out, settings, {}))} runs"):
        if grid:  # first the penalties' λ, chosen on the first seed's selection set
            log(f"    the penalties' λ on seed {settings.seeds[0]}'s selection set: {len(grid)} runs")
            _run_jobs(grid, jobs, log)
        chosen = choose_lambdas(grid)
        for method, choice in chosen.items():
            log(f"    {method}: λ = {choice['lambda']:g} ({choice['why']})")
        train_jobs = [*grid, *plan_jobs(out, settings, chosen)]
        _run_jobs(train_jobs, jobs, log)
    with step(7, "report"):
        summary = summarise(out, settings, train_jobs, facts)
        summary["lambda_choice"] = chosen
        summary["figures"] = _figures(out, settings, log)
        curves = draw_probe_curves(summary, out / "figures" / "probe_by_epoch.png")
        summary["probe_figure"] = str(curves.relative_to(out)) if curves else None
        summary["seconds"] = round(time.perf_counter() - started, 1)
        report = write_report(out, settings, summary)
        log(f"    wrote {report} and {out / 'results.json'}")
    return DemoResult(out=out, report=report, summary=summary)


@contextlib.contextmanager
def _step(log: Log, number: int, title: str, *, after: Callable[[], None]):
    log(f"[{number}/7] {title}")
    started = time.perf_counter()
    yield
    after()  # the step's files join the demo folder's marker
    log(f"    ({time.perf_counter() - started:.1f} s)")


# What a demo folder holds: these files, and the folders each step fills (listed file by file in the
# ownership marker once the step is done), so --force deletes nothing else.
DEMO_FILES = ("demo.json", "REPORT.md", "results.json")
DEMO_FOLDERS = ("runs", "logs", "analysis", "figures")


def _prepare_out(out: Path, settings: DemoSettings, *, force: bool) -> None:
    """Refuse to mix settings in one folder; ``force`` replaces a demo folder that holds nothing else.

    A folder is a demo folder when it carries hvuaudit's ownership marker of kind "demo"
    (:mod:`hvucontracts.files`); a ``demo.json`` alone proves nothing.
    """
    marker = out / "demo.json"
    wanted = {"format": DEMO_FORMAT, "settings": settings.as_json()}
    owner = read_owner_marker(out) if out.is_dir() else None
    if owner is None or owner["kind"] != DEMO_KIND or force:
        # Not ours: refused unless empty. Ours with --force: refused if it holds anything foreign.
        if check_replaceable(out, kind=DEMO_KIND, force=force):
            remove_owned(out)
    else:
        hint = f"start over with: hvuaudit demo --out {out} --force"
        stored = read_json(marker, "demo description", hint=hint)
        if isinstance(stored, dict) and isinstance(stored.get("settings"), dict):
            stored = {**stored, "settings": DemoSettings.stored_as_json(stored["settings"])}
        if stored != wanted:
            raise ConflictError(
                f"{out} holds a demo with other settings ({marker})",
                hint="pass --force to start it over, or choose another --out",
            )
    owned = read_owner_marker(out)
    write_owner_marker(out, DEMO_KIND, [*DEMO_FILES, *(owned["files"] if owned else [])])
    write_json_atomically(marker, wanted)


def _adopt_outputs(out: Path, settings: DemoSettings) -> None:
    """Add what the steps wrote so far to the demo folder's marker (a file added later stays foreign)."""
    adopt_files(out, [*DEMO_FOLDERS, *(seed_dir(out, seed).name for seed in settings.seeds)])


def video_set_config(settings: DemoSettings, seed: int) -> VideoSetConfig:
    """The benchmark of one seed; only the first seed gets the control subset (one control run)."""
    control = None if settings.control and seed == settings.seeds[0] else 0
    return VideoSetConfig(
        clips=settings.clips, seed=seed, control_clips=control, objects=settings.objects
    ).resolved()


def _generate(out: Path, settings: DemoSettings, seed: int, jobs: int, log: Log) -> dict:
    folder = seed_dir(out, seed) / "benchmark"
    config = video_set_config(settings, seed)
    if (folder / "benchmark.json").is_file():
        doc = read_video_set(folder)
        # a benchmark.json from before a knob existed holds what the versions before it wrote; one with a
        # knob this version does not know is another benchmark
        if {**ADDED_KNOBS, **doc["config"]} == asdict(config):
            log(f"    seed {seed}: reused {folder}")
            return {**doc, "config": asdict(config)}
    started = time.perf_counter()
    files = generate_video_set(config, folder, workers=jobs, force=True)
    log(
        f"    seed {seed}: {files.clips:,} mp4 clips and {len(files.annotations)} annotation files in "
        f"{folder} ({time.perf_counter() - started:.1f} s)"
    )
    return read_video_set(folder)


def _store(out: Path, seed: int) -> Path:
    return seed_dir(out, seed) / "hvu.duckdb"


def _ingest(out: Path, seed: int, benchmark: dict, log: Log) -> None:
    from hvuaudit.ingest import ingest

    folder = seed_dir(out, seed) / "benchmark"
    files = benchmark["files"]
    # HVU_Train_* names its subset; the others are given, as `hvuaudit ingest FILE --subset NAME` would
    summaries = [ingest([folder / files["train"]], folder / benchmark["categories"], db=_store(out, seed))]
    for subset in ("indist", "uniform", "control"):
        if subset in files:
            summaries.append(ingest([folder / files[subset]], None, db=_store(out, seed), subset=subset))
    added = sum(s.clips_added for s in summaries)
    log(
        f"    seed {seed}: {added:,} clips added to {_store(out, seed)}"
        if added
        else f"    seed {seed}: every file was already in {_store(out, seed)}"
    )


def _nca(out: Path, seed: int, log: Log) -> dict:
    from hvuaudit.nca import compute_nca
    from hvuaudit.roles import recommend_roles, write_tasks
    from hvuaudit.store import open_store

    with open_store(_store(out, seed), read_only=True) as con:
        tables = {
            c: compute_nca(con, c, threshold=NCA_THRESHOLD, subset="train") for c in ("object", "scene")
        }
        roles = recommend_roles(con, threshold=NCA_THRESHOLD, subset="train", categories=("scene", "object"))
    tasks = seed_dir(out, seed) / "tasks.json"
    write_tasks(roles, tasks)
    facts: dict[str, Any] = {
        "threshold": NCA_THRESHOLD,
        "roles": roles.roles,
        "tasks": str(tasks),
        "per_category": {
            category: {
                "actions_necessary": int(frame["necessary"].sum()),
                "actions": frame.height,
                # polars types a reduction as any Python literal; the ratio column is a float one
                "ratio_min": float(cast(float, frame["ratio"].min())),
                "ratio_max": float(cast(float, frame["ratio"].max())),
                "top_tags": dict(zip(frame["action"], frame["tag"], strict=True)),
            }
            for category, frame in tables.items()
        },
    }
    parts = [
        f"{c} necessary for {f['actions_necessary']}/{f['actions']} actions "
        f"(n11/n12 {f['ratio_min']:.2f}–{f['ratio_max']:.2f})"
        for c, f in facts["per_category"].items()
    ]
    log(
        f"    seed {seed}: {'; '.join(parts)} at threshold {NCA_THRESHOLD} → "
        f"object {roles.roles['object']}, scene {roles.roles['scene']}; wrote {tasks}"
    )
    return facts


def _split(out: Path, settings: DemoSettings, seed: int, benchmark: dict, log: Log) -> dict:
    from hvuaudit.splits import SplitParams, build_split, export_split, verify_split
    from hvuaudit.store import open_store

    videos = str(seed_dir(out, seed) / "benchmark" / "videos")
    wanted = {
        # the biased and rare pairs of subset train; SI-2 keeps the rare ones out of training
        "si2": SplitParams(
            variant="2",
            min_videos=1,
            val_fraction=benchmark["si2_val_fraction"],
            subset="train",
            videos=videos,
            name_template=DEFAULT_TEMPLATE,  # the video set names its clips so
            eval_subsets=("indist", "uniform"),
        ),
    }
    if "control" in benchmark["files"]:
        wanted["control"] = replace(wanted["si2"], subset="control", eval_subsets=("uniform",))
    facts = {}
    with open_store(_store(out, seed), read_only=False) as con:
        for name, params in wanted.items():
            folder = seed_dir(out, seed) / name
            if (folder / MANIFEST).is_file():
                manifest = read_manifest(folder)
                facts[name] = {
                    "dir": str(folder),
                    "counts": manifest["counts"],
                    "val_fraction": params.val_fraction,
                }
                log(f"    seed {seed}: reused {folder}")
                continue
            result = build_split(con, params)
            export_split(con, result, folder, force=True)
            checks = verify_split(con, folder)
            if not checks.ok:
                failed = [f"{n}: {d}" for n, ok, d in checks.checks if not ok]
                raise DemoError(
                    f"the split {folder} failed its verification: {'; '.join(failed)}",
                    hint="this is a bug in the split code or the benchmark; please report it",
                )
            facts[name] = {"dir": str(folder), "counts": result.report, "val_fraction": params.val_fraction}
            extra = ", ".join(f"{k} {v:,}" for k, v in result.report["eval_sets"].items())
            log(
                f"    seed {seed}: {name}: {result.train.height:,} train / "
                f"{result.report['select']['clips']:,} select / {result.val.height:,} val clips "
                f"({result.report['train']['pairs']} / {result.report['val']['pairs']} action:scene pairs), "
                f"eval sets {extra}; verify: {len(checks.checks)}/{len(checks.checks)} PASS"
            )
    return facts


# ----------------------------------------------------------------------------- training


def _job_factory(out: Path, settings: DemoSettings):
    def job(name: str, group: str, method: str, seed: int, split: str, **kwargs) -> TrainJob:
        run_dir = out / "runs" / group / name
        return TrainJob(
            name=name,
            group=group,
            method=method,
            seed=seed,
            split_dir=str(seed_dir(out, seed) / split),
            run_dir=str(run_dir),
            log=str(out / "logs" / f"{group}_{name}.log"),
            analysis=str(out / "analysis" / f"{group}_{name}.json"),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            max_lr=settings.max_lr,
            **kwargs,
        )

    def tasks(seed: int) -> str:
        return str(seed_dir(out, seed) / "tasks.json")

    return job, tasks


def plan_lambda_jobs(out: Path, settings: DemoSettings) -> list[TrainJob]:
    """The penalties' λ grid on the first seed (group "lambda"): what :func:`choose_lambdas` reads."""
    job, tasks = _job_factory(out, settings)
    first = settings.seeds[0]
    return [
        job(
            f"{method}_lambda{magnitude:g}_seed{first}",
            "lambda",
            TRAINED_AS[method][0],
            first,
            "si2",
            tasks_file=tasks(first),
            lambda_magnitude=magnitude,
            adversary=TRAINED_AS[method][1],
            label=f"{METHOD_NAMES[method]}, λ = {magnitude:g}",
        )
        for method in PENALTY_METHODS
        if method in settings.methods
        for magnitude in LAMBDA_GRID
    ]


def choose_lambdas(grid: list[TrainJob]) -> dict[str, dict]:
    """Per penalty method, λ chosen from its grid runs' selection accuracy alone (the rule of
    :data:`hvudemo.settings.LAMBDA_GRID`): the largest λ within SELECTION_TOLERANCE of the grid's best."""
    chosen: dict[str, dict] = {}
    for method in PENALTY_METHODS:
        runs = [j for j in grid if j.name.startswith(f"{method}_lambda")]
        if not runs:
            continue
        scores: list[dict[str, float]] = []
        for j in runs:
            analysis = Path(j.analysis)
            if analysis.is_file() and "diverged" in json.loads(analysis.read_text(encoding="utf-8")):
                continue  # a λ too strong to train is not a candidate
            metrics = runfolder.read_metrics(j.run_dir)
            selection = metrics[0]["selection_set"]
            if selection != "select":  # a split without select.csv would choose λ on the test pairs
                raise DemoError(
                    f"{j.run_dir} chose its epochs on {selection!r}, not on select.csv, so λ cannot be "
                    "chosen from it",
                    hint="rebuild the demo's splits with a selection set: hvuaudit demo --force",
                )
            accuracy = max(m[selection]["action_acc"] or 0.0 for m in metrics)
            assert j.lambda_magnitude is not None  # every grid job has its λ
            scores.append({"lambda": float(j.lambda_magnitude), "best_select_acc": float(accuracy)})
        if not scores:
            raise DemoError(
                f"every λ of {method} diverged ({', '.join(f'{v:g}' for v in LAMBDA_GRID)})",
                hint=f"see the logs of {runs[0].group}/{method}_lambda*; the grid is LAMBDA_GRID in "
                "hvudemo/settings.py",
            )
        best = max(s["best_select_acc"] for s in scores)
        eligible = [s for s in scores if s["best_select_acc"] >= best - SELECTION_TOLERANCE]
        pick = max(eligible, key=lambda s: s["lambda"])
        chosen[method] = {
            "lambda": pick["lambda"],
            "grid": scores,
            "why": f"the largest λ whose best select.csv accuracy ({100 * pick['best_select_acc']:.1f}%) is "
            f"within {100 * SELECTION_TOLERANCE:g} point of the grid's best ({100 * best:.1f}%)",
        }
    return chosen


def plan_jobs(out: Path, settings: DemoSettings, chosen: dict[str, dict]) -> list[TrainJob]:
    """Main runs (every method × seed; the penalties at their ``chosen`` λ), then the control, then the
    sensitivity sweep."""
    job, tasks = _job_factory(out, settings)
    first = settings.seeds[0]
    planned = []
    for seed in settings.seeds:
        for method in settings.methods:
            # NCA's roles drive the adversarial methods; MTL learns the scene on purpose, so it gets no
            # tasks.json
            with_tasks = method in ("amt-no-object", "amt", *TRAINED_AS)
            trained_as, adversary = TRAINED_AS.get(method, (method, "grl"))
            planned.append(
                job(
                    f"{method}_seed{seed}",
                    "main",
                    trained_as,
                    seed,
                    "si2",
                    tasks_file=tasks(seed) if with_tasks else None,
                    adversary=adversary,
                    lambda_magnitude=chosen[method]["lambda"] if method in chosen else None,
                    # the first seed's adversaries are probed after every epoch (REPORT.md's figure);
                    # resuming is exact, so these runs are the ones an uninterrupted training gives. The
                    # penalties' first-seed runs repeat the λ grid's run at the chosen λ: the grid keeps no
                    # checkpoint per epoch to probe, and probing its 8 runs every epoch costs more than 2 runs
                    probe_every_epoch=settings.probe_curves and seed == first and method in ADVERSARY_METHODS,
                    label=METHOD_NAMES[method],
                )
            )
    if settings.control:
        planned.append(
            job(
                f"baseline_seed{first}",
                "control",
                "baseline",
                first,
                "control",
                label="Baseline trained on random scenes",
            )
        )
    if settings.sensitivity:
        for magnitude in (0.1, 0.3, 1.0):
            planned.append(
                job(
                    f"amt_lambda{magnitude:g}_constant_seed{first}",
                    "sensitivity",
                    "amt",
                    first,
                    "si2",
                    tasks_file=tasks(first),
                    lambda_magnitude=magnitude,
                    adv_schedule="constant",
                    label=f"AMT, GRL λ = {magnitude:g}, no ramp",
                )
            )
        if "amt-ensemble" in settings.methods:  # K, on the test pairs too (the penalties' λ: the grid)
            for heads in (2, 8):
                planned.append(
                    job(
                        f"amt-ensemble_k{heads}_seed{first}",
                        "sensitivity",
                        "amt",
                        first,
                        "si2",
                        tasks_file=tasks(first),
                        adversary="ensemble",
                        adversary_heads=heads,
                        label=f"AMT, ensemble of K = {heads} heads",
                    )
                )
        planned.append(
            job(
                f"amt_negative_constant_seed{first}",
                "sensitivity",
                "amt",
                first,
                "si2",
                tasks_file=tasks(first),
                lambda_magnitude=0.3,
                adv_schedule="constant",
                adversary="negative",
                label="AMT, literal Eq. 3 (negative weight λ = 0.3), no ramp",
            )
        )
    return planned


def curve_file(job: TrainJob) -> Path:
    """Where a job probed after every epoch keeps those probes as it goes."""
    return Path(job.analysis).with_suffix(".epochs.json")


def job_finished(job: TrainJob) -> bool:
    """Trained for every epoch, evaluated after that, and analysed after the evaluation (or diverged),
    with both probes (an analysis from before the MLP probe is done again) and, when asked, the curve."""
    run, analysis = Path(job.run_dir), Path(job.analysis)
    if analysis.is_file() and "diverged" in json.loads(analysis.read_text(encoding="utf-8")):
        return True
    paths = [run / runfolder.CHECKPOINT, run / runfolder.EVAL, analysis]
    if not all(p.is_file() for p in paths):
        return False
    done = json.loads(analysis.read_text(encoding="utf-8"))
    if "mlp_probe_accuracy" not in done or (job.probe_every_epoch and "probe_by_epoch" not in done):
        return False
    mtimes = [p.stat().st_mtime for p in paths]
    return mtimes == sorted(mtimes) and _epochs_done(run) >= job.epochs


def _epochs_done(run: Path) -> int:
    """Finished epochs of a run; a damaged metrics.jsonl counts as none, and --resume mends it."""
    try:
        return len(runfolder.read_metrics(run)) if (run / runfolder.METRICS).is_file() else 0
    except runfolder.RunFileError:
        return 0


def _run_jobs(planned: list[TrainJob], jobs: int, log: Log) -> None:
    todo = [j for j in planned if not job_finished(j)]
    if len(todo) < len(planned):
        log(f"    reused {len(planned) - len(todo)} finished run(s)")
    if not todo:
        return
    for j in todo:
        Path(j.log).parent.mkdir(parents=True, exist_ok=True)
        Path(j.analysis).parent.mkdir(parents=True, exist_ok=True)
    log(
        f"    {len(todo)} run(s) on {min(jobs, len(todo))} process(es), one torch thread each; "
        f"logs in {Path(todo[0].log).parent}/"
    )
    # spawn: fresh interpreters that import torch themselves (this process never does)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(todo)), mp_context=context, initializer=die_with_parent
    ) as pool:
        futures = {pool.submit(train_and_evaluate, j): j for j in todo}
        for done, future in enumerate(as_completed(futures), start=1):
            j = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool as exc:  # a worker was killed (out of memory, a signal)
                raise DemoError(
                    f"the worker training {j.group}/{j.name} died: {exc}",
                    hint=f"see {j.log}; rerun `hvuaudit demo` to continue, or lower --jobs",
                ) from exc
            if "error" in result:
                for other in futures:
                    other.cancel()
                raise DemoError(
                    f"run {j.group}/{j.name} failed: {result['error']}",
                    hint=f"its log is {j.log}; rerun `hvuaudit demo` to continue where it stopped",
                )
            if "diverged" in result:
                log(f"    [{done}/{len(todo)}] {j.group}/{j.name}: diverged ({result['diverged']}); recorded")
                continue
            log(
                f"    [{done}/{len(todo)}] {j.group}/{j.name}: {result['epochs']} epochs in "
                f"{result['train_seconds']:.0f} s, scene-invariant acc {pct(result['val_top1'])}, "
                f"uniform dcorr² {result['uniform_dcorr2']:.3f}"
            )


def train_and_evaluate(job: TrainJob) -> dict:
    """Worker process: train (or resume) one run, evaluate its last checkpoint, probe its features.

    Everything the trainer prints goes to the job's log file. Returns a small
    summary, or ``{"error": ...}`` (exceptions with extra state may not pickle).
    """
    with (
        open(job.log, "a", encoding="utf-8") as handle,
        contextlib.redirect_stderr(handle),
        contextlib.redirect_stdout(handle),
    ):
        try:
            return _train_and_evaluate(job, lambda message: print(message, file=handle, flush=True))
        except Exception as exc:  # reported by the parent with the log's path
            import traceback

            traceback.print_exc(file=handle)
            return {"error": f"{type(exc).__name__}: {exc}"}


def _train_and_evaluate(job: TrainJob, log: Log) -> dict:
    from hvueval.evaluate import evaluate_run
    from trainer.config import with_recipe
    from trainer.errors import DivergedError
    from trainer.train import train

    run = Path(job.run_dir)
    # the cpu-demo recipe (trainer.config.RECIPES), with this job's method, seed, weights and length
    config = with_recipe(
        "cpu-demo",
        split_dir=job.split_dir,
        out=job.run_dir,
        method=job.method,
        seed=job.seed,
        tasks_file=job.tasks_file,
        lambda_=job.lambda_magnitude,
        adv_schedule=job.adv_schedule,
        adversary=job.adversary,
        **({"adversary_heads": job.adversary_heads} if job.adversary_heads else {}),
        epochs=job.epochs,
        batch_size=job.batch_size,
        max_lr=job.max_lr,
    )
    started = time.perf_counter()
    curve_path = curve_file(job)
    curve = _read_curve(curve_path) if job.probe_every_epoch else []
    if job.probe_every_epoch and len(curve) == _epochs_done(run) - 1:
        # stopped between an epoch and its probe: checkpoint.pt is that epoch
        curve.append(_probe_epoch(run, _epochs_done(run), job.seed, log))
        write_json_atomically(curve_path, curve)
    # a run trained without its curve (by an older demo) is trained again from the start, epoch by epoch
    again = job.probe_every_epoch and len(curve) < _epochs_done(run)
    if again:
        log(f"demo: {run} has no probe for every epoch; training it again")
        curve = []
    while again or _epochs_done(run) < job.epochs:
        if again:
            resume, again = False, False  # force=True below: the trainer replaces its own run
        else:
            resume = (run / runfolder.CHECKPOINT).is_file()
        log(f"demo: {'resuming' if resume else 'training'} {run} (method {job.method}, seed {job.seed})")
        try:
            # epoch by epoch when the curve is wanted: a resume continues exactly, so the run is the same
            train(config, resume=resume, force=not resume, stop_after=1 if job.probe_every_epoch else None,
                  log=log)  # fmt: skip
        except DivergedError as exc:
            if job.group not in ("sensitivity", "lambda"):
                raise
            # an outcome of the sweep (|λ| too large, the literal Eq. 3), reported as such
            write_json_atomically(Path(job.analysis), {"diverged": str(exc)})
            return {"diverged": str(exc)}
        if job.probe_every_epoch:  # the epochs done as the run folder says now (a damaged log reads 0)
            curve.append(_probe_epoch(run, _epochs_done(run), job.seed, log))
            write_json_atomically(curve_path, curve)
    train_seconds = time.perf_counter() - started
    # best.pt: the epoch with the best accuracy on select.csv, training pairs held out by the split; the
    # scene-invariant test pairs (val) and the indist and uniform sets are read here only
    doc = evaluate_run(run, checkpoint="best", device="cpu", workers=0, threads=1, log=log)
    analysis = probe_features(run / runfolder.FEATURES, set_name="uniform", seed=job.seed)
    if job.probe_every_epoch:
        analysis["probe_by_epoch"] = curve
    write_json_atomically(Path(job.analysis), analysis)
    return {
        "epochs": job.epochs,
        "train_seconds": train_seconds,
        "val_top1": doc["sets"]["val"]["top1"],
        "uniform_dcorr2": doc["sets"]["uniform"]["dcorr2"],
    }


def _read_curve(path: Path) -> list[dict]:
    """The probes of the epochs done so far (none when the file is missing or damaged)."""
    try:
        curve = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return curve if isinstance(curve, list) else []


def _probe_epoch(run: Path, epoch: int, seed: int, log: Log) -> dict:
    """The uniform set's scene probes and dcorr² for the run's last checkpoint (the epoch just trained).

    For the figure only: the numbers of the table come from best.pt, evaluated once training is done.
    """
    from hvueval.evaluate import evaluate_run

    doc = evaluate_run(run, checkpoint="last", sets=["uniform"], device="cpu", workers=0, threads=1, log=log)
    probes = probe_features(run / runfolder.FEATURES, set_name="uniform", seed=seed)
    return {
        "epoch": epoch,
        "probe": probes["probe_accuracy"],
        "mlp_probe": probes["mlp_probe_accuracy"],
        "dcorr2": doc["sets"]["uniform"]["dcorr2"],
        "uniform_acc": doc["sets"]["uniform"]["top1"],
    }


# ----------------------------------------------------------------------------- numbers


# ----------------------------------------------------------------------------- REPORT.md


# ----------------------------------------------------------------------------- files


def _draw_figures(runs: list[str], out_dir: str, seed: int) -> tuple[list[str], list[str]]:
    """In a worker process: Grad-CAM runs the models, so it imports torch, which the parent never does."""
    from hvueval.figures import write_run_figures

    notes: list[str] = []
    written = write_run_figures(runs, out_dir, gradcam_clips=2, seed=seed, log=notes.append)
    return [str(path) for path in written], notes


def _figures(out: Path, settings: DemoSettings, log: Log) -> list[str]:
    """Fig. 4–6 for the first seed's baseline and AMT runs (paths relative to ``out``, for REPORT.md)."""
    first = settings.seeds[0]
    runs = [str(out / "runs" / "main" / f"{method}_seed{first}") for method in ("baseline", "amt")]
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=die_with_parent) as pool:
            written, notes = pool.submit(_draw_figures, runs, str(out / "figures"), first).result()
    except BrokenProcessPool as exc:  # the worker was killed (out of memory?): say so, as for training runs
        raise DemoError(
            f"the figure worker died ({exc}); rerun `hvuaudit demo --out {out}` to draw the figures again"
        ) from exc
    for note in notes:
        log(f"    {note}")
    return [str(Path(path).relative_to(out)) for path in written if path.endswith(".png")]
