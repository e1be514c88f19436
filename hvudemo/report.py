"""REPORT.md: the demo's numbers in plain words, rendered from ``templates/REPORT.md.j2``.

The renderer computes nothing new: every figure comes from ``results.json``
(:mod:`hvudemo.analysis`); the prose lives in the Jinja2 template, the few sentences
that depend on which way the numbers went are chosen here. Never imports torch.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jinja2

from hvucontracts.files import (
    write_json_atomically,
    write_text_atomically,
)
from hvudemo.analysis import mean_std, pct
from hvudemo.settings import EVAL_SETS, LAMBDA_GRID, METHOD_NAMES, METHODS, NCA_THRESHOLD, DemoSettings
from hvudemo.videoset import ADDED_KNOBS


def write_report(out: Path, settings: DemoSettings, summary: dict) -> Path:
    from hvucontracts.runfolder import find_runs
    from hvueval.report import build_report, render_report

    tables = {
        name: render_report(build_report(find_runs([out / "runs" / "main"]), name), "markdown")
        for name in EVAL_SETS
    }
    text = render_markdown(settings, summary, tables)
    write_text_atomically(out / "REPORT.md", text)
    write_json_atomically(out / "results.json", summary)
    return out / "REPORT.md"


def render_markdown(settings: DemoSettings, summary: dict, tables: dict[str, str]) -> str:
    """REPORT.md: the numbers of ``summary`` in plain words (a pure function of results.json, for tests)."""
    methods, paired = summary["methods"], summary["paired"]
    first = settings.seeds[0]
    split = by_seed(summary["splits"], first)
    nca = by_seed(summary["nca"], first)
    sensitivity = [r for r in summary["runs"].values() if r["group"] == "sensitivity"]
    default = summary["runs"].get(f"main/amt_seed{first}")
    context = {
        "settings": settings,
        "summary": summary,
        "first": first,
        "seeds": ", ".join(str(s) for s in settings.seeds),
        # a results.json from before a knob existed holds no value of it: its default
        "bench": {**ADDED_KNOBS, **by_seed(summary["benchmark"], first)},
        "nca": nca,
        "obj": nca["per_category"]["object"],
        "scene": nca["per_category"]["scene"],
        "si2": split["si2"],
        "eval_sets": EVAL_SETS,
        "checks": summary["checks"],
        "probe_chance": 100 * summary["runs"][f"main/baseline_seed{first}"]["probe_chance"],
        "results_table": results_table(settings, summary),
        "removal_table": removal_table(summary),
        "removal_words": removal_words(summary),
        "lambda_choice": summary.get("lambda_choice") or {},
        "lambda_grid": [f"{magnitude:g}" for magnitude in LAMBDA_GRID],
        "lambda_runs": [r for r in summary["runs"].values() if r["group"] == "lambda"],
        "conclusions": _conclusions(
            settings, summary, methods["baseline"], methods["amt"], summary["gap"], paired["amt"]["gain"]
        ),
        "paired": paired,
        "method_names": METHOD_NAMES,
        "sensitivity": sensitivity,
        "sensitivity_default": default,
        "sensitivity_words": " ".join(_sensitivity_words(default, sensitivity)) if sensitivity else "",
        "tables": tables,
        "nca_threshold": NCA_THRESHOLD,
    }
    return _template().render(**context)


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("hvudemo", "templates"),
        autoescape=False,  # Markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the render instead of printing nothing
    )
    environment.globals.update(pct=pct, ms=_ms, stem=lambda path: Path(path).stem)
    environment.filters["cell"] = lambda text: str(text).replace("|", "\\|")  # one markdown table cell
    return environment.get_template("REPORT.md.j2")


def results_table(settings: DemoSettings, summary: dict) -> list[str]:
    """The main table as markdown lines: one row per method (mean ± std over seeds), then the control."""
    lines = [
        "| run | in-distribution acc | scene-invariant acc | uniform acc | dcorr² (uniform) | linear scene "
        "probe (uniform) | MLP scene probe (uniform) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["methods"].values():
        lines.append(
            f"| {row['label']} | {_ms(row['acc_indist'])} | {_ms(row['acc_val'])} | "
            f"{_ms(row['acc_uniform'])} "
            f"| {_ms(row['dcorr2_uniform'], percent=False)} | {_ms(row['probe_uniform'])} "
            f"| {_ms(row['mlp_probe_uniform'])} |"
        )
    first = settings.seeds[0]
    control = summary["runs"].get(f"control/baseline_seed{first}")
    if control:
        lines.append(
            f"| Baseline on random scenes (control, seed {first}; its own unseen pairs) | – | "
            f"{100 * control['acc']['val']:.1f} | {100 * control['acc']['uniform']:.1f} | "
            f"{control['dcorr2_uniform']:.3f} | {100 * control['probe_uniform']:.1f} "
            f"| {100 * control['mlp_probe_uniform']:.1f} |"
        )
    return lines


def removal_table(summary: dict) -> list[str]:
    """Issue 22's comparison: each adversary's accuracies, dcorr², both probes (mean ± std, and the worst
    seed against the target) and the share of the gap closed."""
    removal = summary.get("removal") or {}
    if not removal:
        return []
    chosen = summary.get("lambda_choice") or {}
    lines = [
        "| adversary | λ | scene-invariant acc | in-distribution acc | uniform acc | dcorr² (uniform) "
        "| linear probe | worst seed | MLP probe | worst seed | gap closed | meets the target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for method, target in removal.items():
        row = summary["methods"][method]
        closed = summary["paired"][method]["closed"]
        weight = f"{chosen[method]['lambda']:g} (select.csv)" if method in chosen else "0.3 (default)"
        lines.append(
            f"| {row['label']} | {weight} | {_ms(row['acc_val'])} | {_ms(row['acc_indist'])} "
            f"| {_ms(row['acc_uniform'])} | {_ms(row['dcorr2_uniform'], percent=False)} "
            f"| {_ms(row['probe_uniform'])} | {pct(target['worst_linear_probe'])} "
            f"| {_ms(row['mlp_probe_uniform'])} | {pct(target['worst_mlp_probe'])} | {_ms(closed)}% "
            f"| {'yes' if target['meets_target'] else 'no'} |"
        )
    return lines


def removal_words(summary: dict) -> str:
    """The conclusion of the comparison in plain words, whichever way it went."""
    removal = summary.get("removal") or {}
    if not removal:
        return ""
    met = [t["label"] for t in removal.values() if t["meets_target"]]
    best = min(removal.values(), key=lambda t: t["worst_linear_probe"])
    grl = removal.get("amt")
    if met:
        return (
            f"{' and '.join(met)} met the target on every seed: a fresh linear probe at most "
            f"{pct(best['linear_target'])} and an MLP probe at most {pct(best['mlp_target'])}, with a "
            "scene-invariant accuracy at least AMT-GRL's."
        )
    words = [
        "**No adversary met the target** (a fresh linear probe at most "
        f"{pct(best['linear_target'])} and an MLP probe at most {pct(best['mlp_target'])} on every seed, "
        "at no loss of scene-invariant accuracy against AMT-GRL)."
    ]
    if grl is not None and best is not grl:
        words.append(
            f"The lowest probe came from {best['label']}: {pct(best['worst_linear_probe'])} on its worst "
            f"seed against AMT-GRL's {pct(grl['worst_linear_probe'])}, with a scene-invariant accuracy of "
            f"{pct(best['acc_val'])} (AMT-GRL {pct(grl['acc_val'])})."
        )
    control = next((r for r in summary["runs"].values() if r.get("group") == "control"), None)
    if control is not None and "probe_uniform" in control:
        close = best["worst_linear_probe"] <= control["probe_uniform"] + 0.05
        words.append(
            f"For scale: the control, a baseline trained where scene and action are independent, gives a "
            f"linear probe of {pct(control['probe_uniform'])} and an MLP probe of "
            f"{pct(control['mlp_probe_uniform'])}: the background stays visible in the features of a model "
            "that never saw the shortcut"
            + (", and the best adversary comes within 5 points of that." if close else ".")
        )
    return " ".join(words)


def _sensitivity_words(default: dict, sensitivity: list[dict]) -> list[str]:
    """What the sweep shows, whichever setting came out best."""
    scored = [r for r in [default, *sensitivity] if "diverged" not in r]
    best = max(scored, key=lambda r: r["acc"]["val"])
    words = []
    if best is default:
        words.append(f"The default scored best on these test pairs ({pct(default['acc']['val'])}).")
    else:
        words.append(
            f"The default was not the best setting here: {best['label']} scored "
            f"{pct(best['acc']['val'])} against the default's {pct(default['acc']['val'])} "
            "(one seed; not used to change the default)."
        )
    for r in sensitivity:
        if "diverged" in r:
            words.append(f"{r['label']} diverged.")
        elif r["scene_loss_runaway"]:
            words.append(
                f"{r['label']}: the scene loss ran away ({r['scene_loss_first']:.3g} → "
                f"{r['scene_loss_last']:.3g}) while the features kept the scene (dcorr² "
                f"{r['dcorr2_uniform']:.3f}, probe {pct(r['probe_uniform'])}): the scene head learned to "
                "be wrong instead of the features forgetting the scene."
            )
    return [" ".join(words)]


def by_seed(mapping: dict, seed: int):
    """A per-seed entry; JSON turns the int keys into strings (results.json read back)."""
    return mapping[seed] if seed in mapping else mapping[str(seed)]


def _conclusions(
    settings: DemoSettings, summary: dict, base: dict, amt: dict, gap: dict, amt_gain: dict
) -> list[str]:
    """Plain sentences that follow the numbers, whichever way they go (AMT not helping included)."""
    out = []
    n = len(settings.seeds)
    if gap["mean"] >= 0.05:
        out.append(
            f"- **The bias is real.** The baseline scores {_ms(base['acc_indist'])}% on in-distribution "
            "clips but "
            f"{_ms(base['acc_val'])}% on action:scene pairs it never saw: a gap of {_ms(gap)} points. It "
            "leans on "
            "the background instead of the motion."
        )
    else:
        out.append(
            f"- **No clear bias.** The baseline scores {_ms(base['acc_indist'])}% in distribution and "
            f"{_ms(base['acc_val'])}% on unseen pairs (gap {_ms(gap)} points): there is little for AMT to "
            "fix."
        )
    closed = summary["paired"]["amt"]["closed"]
    seeds_worse = [r["seed"] for r in summary["paired"]["amt"]["seeds"] if r["gain"] <= 0]
    if amt_gain["mean"] is not None and amt_gain["mean"] > 0:
        spread = "" if n == 1 else f" (paired over {n} seeds; each seed is in the table below)"
        out.append(
            f"- **AMT helps here.** With NCA's roles (object auxiliary, scene adversarial) AMT scores "
            f"{_ms(amt['acc_val'])}% on the unseen pairs, {_ms(amt_gain)} points above the baseline{spread}: "
            "it closes "
            f"{_ms(closed)}% of the gap."
            + (f" It did not help on seed(s) {', '.join(map(str, seeds_worse))}." if seeds_worse else "")
        )
    else:
        out.append(
            f"- **AMT did not help here.** It scores {_ms(amt['acc_val'])}% on the unseen pairs, "
            f"{_ms(amt_gain)} points against the baseline."
        )
    if n == 1:
        out.append(
            "- One seed only: the spread between seeds is unknown here, and it can be as large as the "
            "effects. Read single-seed differences with care (the full demo runs 3 paired seeds)."
        )
    if "mtl" in summary["methods"]:
        mtl = summary["methods"]["mtl"]
        mtl_gain = summary["paired"]["mtl"]["gain"]["mean"]
        out.append(
            f"- **Learning the scene on purpose** (MTL) {'hurts' if mtl_gain < 0 else 'does not hurt'}: "
            f"{_ms(mtl['acc_val'])}% on the unseen pairs ({100 * mtl_gain:+.1f} points against the "
            "baseline), "
            f"dcorr² {_ms(mtl['dcorr2_uniform'], percent=False)}."
        )
    if "amt-no-object" in summary["methods"]:
        no_object = summary["methods"]["amt-no-object"]
        paired_rows = zip(
            summary["paired"]["amt"]["seeds"], summary["paired"]["amt-no-object"]["seeds"], strict=True
        )
        effect = mean_std(
            [with_object["method_val"] - without["method_val"] for with_object, without in paired_rows]
        )
        clear = effect["std"] is not None and abs(effect["mean"]) > 2 * effect["std"] / math.sqrt(effect["n"])
        out.append(
            f"- **The object head.** AMT without it scores {_ms(no_object['acc_val'])}% on the unseen pairs "
            f"(dcorr² {_ms(no_object['dcorr2_uniform'], percent=False)}), AMT with it {_ms(amt['acc_val'])}% "
            f"(dcorr² {_ms(amt['dcorr2_uniform'], percent=False)}); paired difference {_ms(effect)} points"
            + (
                ", clearly " + ("better" if effect["mean"] > 0 else "worse") + " with the object head."
                if clear
                else ": no measurable effect of the object head at this number of seeds."
            )
        )
    left_out = [METHOD_NAMES[m] for m in METHODS if m not in settings.methods]
    if left_out:
        where = (
            "left out of `--quick`" if settings.quick else "not trained in this demo (its settings' methods)"
        )
        out.append(f"- {' and '.join(left_out)} are {where}; the full demo (`hvuaudit demo`) trains them.")
    floor = base["dcorr2_floor"]["mean"]
    change = summary["paired"]["amt"]["dcorr2_change"]["mean"]
    out.append(
        f"- **Scene information in the features.** dcorr² on the uniform set "
        f"{'falls' if change < 0 else 'does not fall'} from {_ms(base['dcorr2_uniform'], percent=False)} "
        f"(baseline) to {_ms(amt['dcorr2_uniform'], percent=False)} (AMT); for features with no scene "
        f"information the estimator gives about {floor:.3f} at this n. A fresh linear probe reads the scene "
        f"from AMT's features at {_ms(amt['probe_uniform'])}% (baseline {_ms(base['probe_uniform'])}%, "
        "chance "
        f"{100 * summary['runs'][f'main/baseline_seed{settings.seeds[0]}']['probe_chance']:.1f}%)"
        + (
            ": the adversary hides the scene from its own head much more than it removes it from the "
            "features."
            if amt["probe_uniform"]["mean"] > 0.5
            else "."
        )
    )
    return out


def _ms(stat: dict, *, percent: bool = True, digits: int = 3) -> str:
    """mean ± std as text (percent points for accuracies)."""
    if stat["mean"] is None:
        return "–"
    scale, unit, fmt = (100, "", ".1f") if percent else (1, "", f".{digits}f")
    text = f"{scale * stat['mean']:{fmt}}{unit}"
    if stat["std"] is not None:
        text += f" ± {scale * stat['std']:{fmt}}"
    return text


def draw_probe_curves(summary: dict, path: Path) -> Path | None:
    """The figure of issue 22: the uniform set's linear and MLP scene probes after each epoch, for the
    first seed's adversaries (the runs probed every epoch); None when no run was."""
    from hvueval.plotting import new_figure, save_figure

    curves = {
        run["label"]: run["probe_by_epoch"]
        for run in summary["runs"].values()
        if run.get("group") == "main" and run.get("probe_by_epoch")
    }
    if not curves:
        return None
    fig = new_figure(1000, 420)
    chance = next(iter(summary["runs"].values())).get("probe_chance")
    for index, (key, title) in enumerate((("probe", "linear scene probe"), ("mlp_probe", "MLP scene probe"))):
        ax = fig.add_subplot(1, 2, index + 1)
        for label, points in curves.items():
            ax.plot([p["epoch"] for p in points], [100 * p[key] for p in points], marker="o", label=label)
        if chance:
            ax.axhline(100 * chance, color="grey", linestyle=":", label="chance")
        ax.axhline(100 * (0.25 if key == "probe" else 0.35), color="red", linestyle="--", label="target")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy on the uniform set (%)")
        ax.set_ylim(0, 100)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
