"""The paper's Table 2 rebuilt from run folders: the last step of the pipeline.

split folder → trainer → run folder (config.json) → ``hvuaudit eval`` (eval.json) → **report**.

One row per model setting (method, backbone, task roles, λ, γ, adversary) and per way it was
scored (the checkpoint, the set that selected it, the starting weights, a strict split or not:
runs that differ in any of these are never averaged); for each split variant present, in the
paper's order Default, SI-1, SI-2, the action accuracy and dcorr² of its runs, as mean ± std
over the seeds. Runs without an evaluation are listed as not evaluated, never dropped silently.

It reads JSON only: no torch, no numpy, and never ``hvuaudit``.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hvucontracts.runfolder import CONFIG, EVAL, read_json_object
from hvueval.errors import EvalError

METHOD_NAMES = {  # the paper's names, in the paper's row order
    "baseline": "Baseline",
    "mtl": "MTL",
    "amt-no-object": "AMT w/o object",
    "amt": "AMT",
    "pretrain-adv": "Pretrain-adv",
}
VARIANT_NAMES = {"default": "Default", "si1": "SI-1", "si2": "SI-2"}  # column order as in the paper
ROLE_MARKS = {"learn": "⊕", "auxiliary": "⊕", "adversarial": "⊖", None: "–"}
FORMATS = ("markdown", "csv", "json")
# The headline is the paper's accuracy: top-1 against the clip's primary action (eval.json's "top1").
# Beside it, eval.json's other accuracies, which count a multi-label clip differently.
HEADLINE = "top1"
OTHER_ACCURACIES = {"top1_any": "top-1 any", "top5": "top-5", "mean_class_acc": "mean class"}


@dataclass(frozen=True)
class Run:
    """One run folder: its settings and, if it was evaluated, the chosen eval set."""

    folder: Path
    setting: Setting
    variant: str  # the split variant: "default", "si1", "si2", ...
    seed: int
    scores: dict[str, Any] | None  # eval.json's entry for the set; None when not evaluated
    missing_reason: str  # why scores is None ("" when it is not)


@dataclass(frozen=True)
class Setting:
    """What makes two runs the same model up to the seed: a row of the table.

    Weights of absent heads are None, so a stray λ in a baseline's config does not split rows.
    """

    method_rank: int
    method: str
    backbone: str
    scene_role: str | None  # "auxiliary", "adversarial" or None (no scene head)
    object_role: str | None
    scene_weight: float | None  # λ, signed as in config.json
    object_weight: float | None  # γ
    adversary: (
        str | None
    )  # grl, negative, dcorr or ensembleK/E (+ "+dann" when ramped), when some head is adversarial
    head_loss_reduction: str | None = None  # "mean" or "sum" over a head's classes; None without such a head
    # How the runs were scored: runs that differ in any of these are separate rows, never averaged.
    checkpoint: str | None = None  # eval.json's: best, last or a file; None when not evaluated
    selection_set: str = "val"  # the set that chose best.pt, the plateau steps and the early stop
    pretraining: str = "none"  # "none", or the starting weights' sha256 (their source when it is unknown)
    strict: bool = False  # the split was built with --strict

    def sort_key(self) -> tuple:
        """Paper order of methods, then backbone, roles and weights (None sorts first)."""
        return (
            self.method_rank,
            self.method,
            self.backbone,
            *(
                (value is not None, value or "")
                for value in (self.scene_role, self.object_role, self.adversary)
            ),
            *((value is not None, value or 0.0) for value in (self.scene_weight, self.object_weight)),
            self.head_loss_reduction or "",
            self.checkpoint or "",
            self.selection_set,
            self.pretraining,
            self.strict,
        )

    @property
    def tasks(self) -> str:
        """⊕/⊖/– for action, scene and object, as in the paper."""
        return " ".join(ROLE_MARKS[role] for role in ("learn", self.scene_role, self.object_role))


@dataclass
class Cell:
    """The runs of one setting on one split variant."""

    seeds: list[int] = field(default_factory=list)  # of the evaluated runs
    runs: list[str] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)  # the headline (top-1, primary action), fractions
    others: dict[str, list[float]] = field(default_factory=dict)  # OTHER_ACCURACIES key -> fractions
    dcorr2s: list[float] = field(default_factory=list)  # runs whose eval has no dcorr² are left out
    not_evaluated: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """Table 2: rows of settings, a column pair per split variant, and what could not be scored."""

    eval_set: str
    variants: tuple[str, ...]  # in the paper's column order
    rows: tuple[tuple[Setting, dict[str, Cell]], ...]  # variant -> cell, for the variants it has
    not_evaluated: tuple[Run, ...]
    notes: tuple[str, ...]  # for stderr: things a reader of the table should know


# --- reading run folders ------------------------------------------------------------------


def _require(config: dict[str, Any], path: Path, *keys: str) -> Any:
    value: Any = config
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise EvalError(
                f"{path} has no '{'.'.join(keys[: depth + 1])}'; was it written by `hvuaudit train`?"
            )
        value = value[key]
    return value


def read_run(folder: Path, eval_set: str = "val") -> Run:
    """Settings from config.json, and ``eval_set``'s scores from eval.json when there is one."""
    config_path = folder / CONFIG
    config = read_json_object(config_path)
    method = _require(config, config_path, "method")
    tasks = _require(config, config_path, "tasks")
    if not isinstance(tasks, dict):
        raise EvalError(f"{config_path}: 'tasks' must map action, scene and object to their roles")
    roles = {}
    for task in ("scene", "object"):
        roles[task] = tasks.get(task)
        if roles[task] not in ("auxiliary", "adversarial", None):
            raise EvalError(
                f"{config_path}: tasks.{task} is {roles[task]!r}; expected auxiliary, adversarial or null"
            )
    has_adversary = "adversarial" in roles.values()
    scores, missing_reason, evaluation = _read_scores(folder / EVAL, eval_set)
    setting = Setting(
        method_rank=list(METHOD_NAMES).index(method) if method in METHOD_NAMES else len(METHOD_NAMES),
        method=method,
        backbone=_require(config, config_path, "backbone"),
        scene_role=roles["scene"],
        object_role=roles["object"],
        scene_weight=_weight(config, config_path, "lambda") if roles["scene"] else None,
        object_weight=_weight(config, config_path, "gamma") if roles["object"] else None,
        adversary=_adversary_label(config, config_path) if has_adversary else None,
        # runs from before the option reduced by the class mean
        head_loss_reduction=str(config.get("head_loss_reduction") or "mean") if any(roles.values()) else None,
        checkpoint=evaluation.get("checkpoint") if scores is not None else None,
        # runs trained before select.csv existed record no selection set: they selected on val
        selection_set=str(evaluation.get("selection_set") or config.get("selection_set") or "val"),
        pretraining=_pretraining_label(config),
        strict=bool((config.get("split") or {}).get("strict", False)),
    )
    return Run(
        folder=folder,
        setting=setting,
        variant=_require(config, config_path, "split", "variant"),
        seed=int(_require(config, config_path, "seed")),
        scores=scores,
        missing_reason=missing_reason,
    )


def _weight(config: dict[str, Any], path: Path, key: str) -> float | None:
    """A head's signed weight; null (not resolved) shows as –."""
    value = config.get(key)
    if value is not None and not isinstance(value, int | float):
        raise EvalError(f"{path}: '{key}' is {value!r}; expected a number or null")
    return None if value is None else float(value)


def _pretraining_label(config: dict[str, Any]) -> str:
    """ "none", or the sha256 of the starting weights (their source, for runs that did not record it)."""
    record = config.get("pretraining")
    if isinstance(record, dict) and record.get("sha256"):
        return f"sha256:{record['sha256']}"
    pretrained = config.get("pretrained")
    return str(pretrained) if pretrained else "none"


def _read_scores(eval_path: Path, eval_set: str) -> tuple[dict[str, Any] | None, str, dict[str, Any]]:
    """``eval_set``'s scores (None, and why, when there are none) and the whole eval.json ({} without one)."""
    if not eval_path.is_file():
        return None, "no eval.json", {}
    evaluation = read_json_object(eval_path)
    if "sets" in evaluation:
        sets = evaluation["sets"]
        if eval_set not in sets:
            has = ", ".join(sets) or "none"
            return None, f"eval.json has no set '{eval_set}' (it has: {has})", evaluation
        scores = sets[eval_set]
    elif eval_set == "val":  # the top-level copies are the val set's
        scores = evaluation
    else:
        return None, f"eval.json has no 'sets', so no set '{eval_set}'", evaluation
    top1 = scores.get("top1")
    if top1 is None:  # hvuaudit eval writes null for a set without clips
        return None, f"eval.json has no top-1 accuracy for set '{eval_set}' (no clips?)", evaluation
    if not isinstance(top1, int | float) or not 0 <= top1 <= 1:
        raise EvalError(f"{eval_path}: top1 of set '{eval_set}' is {top1!r}; expected a fraction in [0, 1]")
    return scores, "", evaluation


# --- building the table -------------------------------------------------------------------


def build_report(folders: list[Path], eval_set: str = "val") -> Report:
    """Group runs by setting (rows) and split variant (columns), seeds aggregated."""
    runs = [read_run(folder, eval_set) for folder in folders]
    cells: dict[Setting, dict[str, Cell]] = {}
    seen: dict[tuple[Setting, str, int], Path] = {}
    notes = []
    scored_settings = {run.setting for run in runs if run.scores is not None}
    for run in runs:
        setting = run.setting
        if run.scores is None:
            # no checkpoint was scored: the run joins the first row of its model setting, else its own row
            setting = min(
                (s for s in scored_settings if replace(s, checkpoint=None) == setting),
                key=Setting.sort_key,
                default=setting,
            )
        cell = cells.setdefault(setting, {}).setdefault(run.variant, Cell())
        if run.scores is None:
            cell.not_evaluated.append(str(run.folder))
            continue
        twin = seen.setdefault((run.setting, run.variant, run.seed), run.folder)
        if twin != run.folder:
            notes.append(
                f"{twin} and {run.folder} have the same settings and seed {run.seed}; both are averaged"
            )
        cell.seeds.append(run.seed)
        cell.runs.append(str(run.folder))
        cell.accuracies.append(float(run.scores[HEADLINE]))
        for key in OTHER_ACCURACIES:  # eval.json files from before top1_any lack it: left out
            if isinstance(run.scores.get(key), int | float):
                cell.others.setdefault(key, []).append(float(run.scores[key]))
        if isinstance(run.scores.get("dcorr2"), int | float):
            cell.dcorr2s.append(float(run.scores["dcorr2"]))
    present = {run.variant for run in runs}
    variants = tuple(v for v in VARIANT_NAMES if v in present) + tuple(sorted(present - set(VARIANT_NAMES)))
    return Report(
        eval_set=eval_set,
        variants=variants,
        rows=tuple(sorted(cells.items(), key=lambda item: item[0].sort_key())),
        not_evaluated=tuple(run for run in runs if run.scores is None),
        notes=tuple(notes),
    )


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None for fewer than 2 values)."""
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


# --- rendering ----------------------------------------------------------------------------


def render_report(report: Report, output_format: str) -> str:
    if output_format == "markdown":
        return _render_markdown(report)
    if output_format == "csv":
        return _render_csv(report)
    if output_format == "json":
        return json.dumps(_as_json(report), indent=2, ensure_ascii=False) + "\n"
    raise EvalError(f"unknown report format {output_format!r}; use one of {', '.join(FORMATS)}")


def _adversary_label(config: dict, config_path: Path) -> str:
    """``grl``, or ``grl+dann`` when |λ| is ramped: a ramped and a constant adversary are different rows;
    an ensemble names its heads and their schedule (``ensemble4/2+dann``: 4 heads, one re-drawn every 2
    epochs), so that ensembles of other sizes are other rows too."""
    adversary = _require(config, config_path, "adversary")
    if adversary == "ensemble":
        adversary = f"ensemble{config.get('adversary_heads')}/{config.get('reinit_every')}"
    schedule = config.get("adv_schedule")
    return adversary if schedule in (None, "constant") else f"{adversary}+{schedule}"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


SETTING_HEADER = (
    "Method",
    "Backbone",
    "Tasks (A S O)",
    "λ",
    "γ",
    "Adversary",
    "Head BCE",
    "Checkpoint",
    "Selected on",
    "Pretrained",
    "Strict",
)


def _short_pretraining(label: str) -> str:
    return label[: len("sha256:") + 12] if label.startswith("sha256:") else label


def _setting_columns(setting: Setting) -> list[str]:
    return [
        METHOD_NAMES.get(setting.method, setting.method),
        setting.backbone,
        setting.tasks,
        _number(setting.scene_weight),
        _number(setting.object_weight),
        setting.adversary or "–",
        setting.head_loss_reduction or "–",
        setting.checkpoint or "–",
        setting.selection_set,
        _short_pretraining(setting.pretraining),
        "yes" if setting.strict else "no",
    ]


def _aggregate(values: list[float], scale: float, decimals: int) -> str:
    mean, std = _mean_std(values)
    if mean is None:
        return "–"
    spread = "" if std is None else f" ± {std * scale:.{decimals}f}"
    return f"{mean * scale:.{decimals}f}{spread} ({len(values)})"


def _render_markdown(report: Report) -> str:
    header = list(SETTING_HEADER)
    for variant in report.variants:
        name = VARIANT_NAMES.get(variant, variant)
        header += [f"{name} Acc", f"{name} dcorr²"]
    rule = "|" + "---|" * len(SETTING_HEADER) + "---:|" * 2 * len(report.variants)
    lines = ["| " + " | ".join(header) + " |", rule]
    for setting, cells in report.rows:
        row = _setting_columns(setting)
        for variant in report.variants:
            cell = cells.get(variant)
            if cell is None:
                row += ["", ""]
            elif not cell.accuracies:
                row += ["not evaluated", "not evaluated"]
            else:
                row += [_aggregate(cell.accuracies, 100, 1), _aggregate(cell.dcorr2s, 1, 4)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", *_other_accuracies_table(report)]
    lines += [
        "",
        f"Acc, the headline: top-1 action accuracy (%) against the clip's primary action (the paper's) on "
        f"the {report.eval_set} set. Beside it: top-1 any counts the top-scoring action as right when it is "
        "any of the clip's action tags, top-5 whether the primary action is among the five top-scoring, "
        "mean class is the top-1 accuracy averaged over the action classes. dcorr²: squared distance "
        "correlation between features and scene (V-statistic; 0 = no scene information, lower is better). "
        "Mean ± std over seeds, number of seeds in parentheses. "
        "Tasks: ⊕ learned, ⊖ adversarial, – absent, for action, scene and object. Head BCE: each "
        "scene/object loss is the mean over its classes or their sum (the paper's Eq. 2), which scales λ and "
        "γ. "
        "Checkpoint: the one scored (best: best.pt, chosen on the 'Selected on' set). Pretrained: the "
        "starting weights' sha256, or none. Runs that differ in any column left of the scores are "
        "separate rows.",
    ]
    if any(setting.selection_set == report.eval_set for setting, _ in report.rows):
        lines += [
            "",
            f"Rows selected on {report.eval_set}, the set scored here: their checkpoint, learning-rate drops "
            "and early stop read the clips they are scored on, so their accuracy is optimistic.",
        ]
    if report.not_evaluated:
        lines += ["", "Not evaluated:"]
        for run in report.not_evaluated:
            method = METHOD_NAMES.get(run.setting.method, run.setting.method)
            variant = VARIANT_NAMES.get(run.variant, run.variant)
            lines.append(
                f"- {run.folder} ({method}, {run.setting.backbone}, {variant}, seed {run.seed}): "
                + run.missing_reason
            )
    return "\n".join(lines) + "\n"


def _other_accuracies_table(report: Report) -> list[str]:
    """The accuracies beside the headline: a table of the same rows."""
    header = ["Method", "Backbone", "Tasks (A S O)", "λ", "γ"]
    for variant in report.variants:
        name = VARIANT_NAMES.get(variant, variant)
        header += [f"{name} {label}" for label in OTHER_ACCURACIES.values()]
    lines = [
        f"Beside the headline, on the {report.eval_set} set (%; rows in the order of the table above):",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * 5 + "---:|" * len(OTHER_ACCURACIES) * len(report.variants),
    ]
    for setting, cells in report.rows:
        row = _setting_columns(setting)[:5]
        for variant in report.variants:
            cell = cells.get(variant)
            for key in OTHER_ACCURACIES:
                if cell is None:
                    row.append("")
                else:
                    evaluated = bool(cell.accuracies)
                    row.append(_aggregate(cell.others.get(key, []), 100, 1) if evaluated else "not evaluated")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _cell_numbers(cell: Cell | None) -> dict[str, Any]:
    cell = cell or Cell()
    acc_mean, acc_std = _mean_std(cell.accuracies)
    dcorr2_mean, dcorr2_std = _mean_std(cell.dcorr2s)
    others = {}
    for key in OTHER_ACCURACIES:
        others[f"{key}_mean"], others[f"{key}_std"] = _mean_std(cell.others.get(key, []))
    return {
        "acc_mean": acc_mean,
        "acc_std": acc_std,
        **others,
        "dcorr2_mean": dcorr2_mean,
        "dcorr2_std": dcorr2_std,
        "seeds": len(cell.seeds),
        "not_evaluated": len(cell.not_evaluated),
    }


def _render_csv(report: Report) -> str:
    numbers = list(_cell_numbers(None))
    header = ["method", "backbone", "scene", "object", "lambda", "gamma", "adversary"]
    header += ["head_loss_reduction", "checkpoint", "selection_set", "pretraining", "strict"]
    header += [f"{variant}_{name}" for variant in report.variants for name in numbers]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for setting, cells in report.rows:
        row = [
            setting.method,
            setting.backbone,
            setting.scene_role,
            setting.object_role,
            setting.scene_weight,
            setting.object_weight,
            setting.adversary,
            setting.head_loss_reduction,
            setting.checkpoint,
            setting.selection_set,
            setting.pretraining,
            setting.strict,
        ]
        for variant in report.variants:
            row += list(_cell_numbers(cells.get(variant)).values())
        writer.writerow("" if value is None else value for value in row)
    return buffer.getvalue()


def _as_json(report: Report) -> dict[str, Any]:
    rows = []
    for setting, cells in report.rows:
        rows.append(
            {
                "method": setting.method,
                "backbone": setting.backbone,
                "tasks": {"action": "learn", "scene": setting.scene_role, "object": setting.object_role},
                "lambda": setting.scene_weight,
                "gamma": setting.object_weight,
                "adversary": setting.adversary,
                "head_loss_reduction": setting.head_loss_reduction,
                "checkpoint": setting.checkpoint,
                "selection_set": setting.selection_set,
                "pretraining": setting.pretraining,
                "strict": setting.strict,
                "variants": {
                    variant: {
                        **_cell_numbers(cell),
                        "seeds": cell.seeds,
                        "runs": cell.runs,
                        "not_evaluated": cell.not_evaluated,
                    }
                    for variant, cell in cells.items()
                },
            }
        )
    return {
        "set": report.eval_set,
        "headline": HEADLINE,
        "variants": list(report.variants),
        "rows": rows,
        "not_evaluated": [
            {"run": str(run.folder), "reason": run.missing_reason} for run in report.not_evaluated
        ],
        "notes": list(report.notes),
    }
