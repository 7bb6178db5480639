"""docs/paper_table.md and its plots, written from bench/paper_table.py's results (nothing typed by
hand: every number below comes from the JSON next to it)."""

from __future__ import annotations

import math
import os
from pathlib import Path

METHOD_ORDER = ("sde_grpo", "neighbor_grpo")
COLOURS = {"neighbor_grpo": "tab:blue", "sde_grpo": "tab:orange"}
BEGIN, END = "<!-- paper_table:begin -->", "<!-- paper_table:end -->"


def ci(summary: dict | None, digits: int = 3) -> str:
    if summary is None:
        return "–"
    if summary.get("n", 2) < 2 or math.isnan(summary["low"]):
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} [{summary['low']:.{digits}f}, {summary['high']:.{digits}f}]"


def signed(diff: dict) -> str:
    verdict = "interval excludes 0" if diff["clear"] else "within noise"
    return f"{diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}] ({verdict})"


def _time_to_target_lines(r: dict) -> list[str]:
    ttt = r["time_to_target"]
    lines = [f"Target = {ttt['rule']}."]
    if ttt["target"] is None:
        return [*lines, "Neither method's mean final held-out reward rose above the base model's: no target."]
    lines.append(f"Base {ttt['base']:.3f}, target **{ttt['target']:.3f}**.")
    lines.append("")
    lines.append(
        "| method | seeds that reached it | training seconds to reach it: mean | geometric mean [95 % CI, log scale] |"
    )
    lines.append("|---|---|---|---|")
    for method in METHOD_ORDER:
        t = ttt[method]
        if t["reached"]:
            s = t["seconds"]
            centre = s.get("geomean", s["mean"])
            seconds = f"{s['mean']:.0f} | {centre:.0f} [{s['low']:.0f}, {s['high']:.0f}]"
        else:
            seconds = f"not reached by every seed within {r['methods'][method]['train_seconds']:.0f} s | –"
        lines.append(f"| {r['methods'][method]['label']} | {t['seeds_reached']} of {t['seeds']} | {seconds} |")
    if ttt["ratio_sde_over_neighbor"] is not None:
        lines.append(
            f"\nBoth reached it; the SDE baseline took {ttt['ratio_sde_over_neighbor']:.1f}× as long on average."
        )
        ratio = ttt.get("ratio_sde_over_neighbor_ci")
        if ratio:
            verdict = "a clear difference" if ratio["clear"] else "the interval includes 1: not a clear difference"
            lines.append(
                f"Ratio of geometric means {ratio['ratio']:.1f}× [95 % CI {ratio['low']:.1f}, {ratio['high']:.1f}] "
                f"(Welch on log seconds): {verdict}."
            )
    return lines


def report_markdown(r: dict, plots: list[str], docs: Path) -> str:
    s, m = r["settings"], r["machine"]
    rel = lambda p: Path(os.path.relpath(Path(p).resolve(), docs.parent.resolve())).as_posix()  # noqa: E731
    loads = ", ".join(f"{x['when']} {x['1min']:.2f}" for x in m["load_average"])
    out = [BEGIN, "# The paper's claims at small scale", ""]
    if r["quick"]:
        out += [
            "> **`--quick` results: a pipeline check with 12-second budgets and a 16-image evaluation. "
            "They do not support any claim.**",
            "",
        ]
    out += [
        f"`python bench/paper_table.py --json docs/paper_table/paper_table.json{' --quick' if r['quick'] else ''}` "
        f"on the embedded tiny model, {m['date_utc']} UTC, {m['cpu_count']} CPU cores, {m['workers']} "
        f"single-thread runs at a time ({m['wall_seconds'] / 60:.0f} min in all; 1-min load average: {loads}).",
        "",
        "How it is measured:",
        f"- **Seeds**: {len(r['seeds'])} per method and setting ({', '.join(map(str, r['seeds']))}); every figure "
        "is the mean with its 95 % Student-t interval over seeds, `mean [low, high]`.",
        "- **Time**: quality does not depend on machine load, seconds do. Phase 1 times both methods' "
        "iterations interleaved, one thread each; every run's training time is its iterations × that "
        "s/iter. Evaluations are not training time.",
        f"- **Evaluation**: {s['eval_prompts'] or 60} held-out prompts × {s['eval_seeds']} fixed seeds, the "
        "same noise for every run, sampled by one shared sampler that is neither method's rollout sampler "
        "(Heun, 8 steps); each method's final model is also scored on its own rollout sampler.",
        "- **Reward** `shapes_fidelity` (the checker's soft attribute score) is trained. **Gold** is the "
        "mean of `shapes_render_match` (attribute accuracy of the nearest rendering of the world's own "
        "renderer) and `shapes_render_fit` (closeness to the best rendering of the prompt): neither "
        "shares any logic with the checker. The checker's hard accuracy and cleanliness are monitors.",
        f"- **Fair baseline**: the same learning-rate sweep ({', '.join(f'{x:g}' for x in s['learning_rates'])}) "
        f"for both methods, {s['budget']:.0f} s of training each; each method is reported at its best "
        "(highest mean final held-out reward). The choice is made on the same held-out evaluation that "
        "reports it, which flatters both methods alike.",
        "- **Differences** between settings are Welch 95 % intervals; one that contains 0 is reported as "
        "within noise, never as a win.",
        "",
        "## 1. Cost per iteration (48 samples, one thread)",
        "",
        "| method | NFE_old | NFE_θ | s/iter (median) | rollout / reward / update s |",
        "|---|---|---|---|---|",
    ]
    for method in METHOD_ORDER:
        c = r["cost"][method]
        out.append(
            f"| {r['methods'][method]['label']} | {c['nfe_old']:.0f} | {c['nfe_theta']:.3g} | {c['s_per_iter']:.2f} | "
            f"{c['rollout_s']:.2f} / {c['reward_s']:.2f} / {c['train_s']:.2f} |"
        )
    out += [
        "",
        f"Cost ratio (SDE s/iter ÷ Neighbor s/iter): **{r['cost_ratio']:.2f}×** "
        f"({len(r['cost']['neighbor_grpo']['samples'])} timed iterations each). The paper reports 5.3× on FLUX.",
        "",
        "## 2. Learning-rate sweep (final held-out values)",
        "",
        *[f"![{Path(p).stem}]({rel(p)})" for p in plots if "lr_sweep" in p],
        "",
        "| method | lr | held-out reward | gold | render match | render fit |",
        "|---|---|---|---|---|---|",
    ]
    for method in METHOD_ORDER:
        for lr, cell in r["sweep"][method].items():
            if "diverged" in cell:
                out.append(
                    f"| {r['methods'][method]['label']} | {lr} | diverged in {cell['diverged']} of {cell['seeds']} seeds | | | |"
                )
                continue
            best = " **(best)**" if float(lr) == r["methods"][method]["learning_rate"] else ""
            out.append(
                f"| {r['methods'][method]['label']} | {lr}{best} | {ci(cell['reward'])} | {ci(cell['gold'])} | "
                f"{ci(cell['shapes_render_match'])} | {ci(cell['shapes_render_fit'])} |"
            )
    base = r["base"]["eval"]
    out += [
        "",
        "## 3. Both methods at their best learning rate, equal training time",
        "",
        *[f"![{Path(p).stem}]({rel(p)})" for p in plots if "curves" in p],
        "",
        "| | base model | SDE GRPO | Neighbor GRPO | Neighbor − SDE |",
        "|---|---|---|---|---|",
    ]
    rows = [
        ("iterations in the budget", None, "iterations"),
        ("held-out reward (trained)", "reward", None),
        ("gold (render match + fit) / 2", "gold", None),
        ("render match", "shapes_render_match", None),
        ("render fit", "shapes_render_fit", None),
        ("checker accuracy (monitor)", "shapes_accuracy", None),
        ("cleanliness (monitor)", "shapes_clean", None),
    ]
    for title, key, attr in rows:
        if attr:
            cells = [str(r["methods"][m][attr]) for m in METHOD_ORDER]
            out.append(f"| {title} | – | {' | '.join(cells)} | |")
            continue
        cells = [ci(r["methods"][m]["final"][key]) for m in METHOD_ORDER]
        out.append(f"| {title} | {base[key]:.3f} | {' | '.join(cells)} | {signed(r['neighbor_minus_sde'][key])} |")
    out += ["", "On each method's own rollout sampler (final models; base model on the same sampler):", ""]
    out += ["| method | base reward | final reward | base gold | final gold |", "|---|---|---|---|---|"]
    for method in METHOD_ORDER:
        mm = r["methods"][method]
        out.append(
            f"| {mm['label']} | {mm['base_rollout_sampler']['reward']:.3f} | {ci(mm['final_rollout_sampler']['reward'])} | "
            f"{mm['base_rollout_sampler']['gold']:.3f} | {ci(mm['final_rollout_sampler']['gold'])} |"
        )
    out += ["", "### Time to target", "", *_time_to_target_lines(r), ""]
    a = r["ablations"]
    out += [
        "## 4. Ablations (Neighbor GRPO, equal iterations)",
        "",
        f"{a['iterations']} iterations each at lr {a['learning_rate']:g}; the main setting's cells are the "
        "main runs at that iteration. B changes the cost per iteration (NFE_θ = B/G·K), so its cells "
        "compare quality per iteration, not per second.",
        "",
        *[f"![{Path(p).stem}]({rel(p)})" for p in plots if "ablations" in p],
        "",
        "| setting | trained reward | gold | render match | render fit | flat groups | one-outlier groups |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, cell in a["cells"].items():
        if "diverged" in cell:
            out.append(f"| {label} | diverged in {cell['diverged']} of {cell['seeds']} seeds | | | | | |")
            continue
        shape = (
            f"{cell['flat_group_fraction']:.2f} | {cell['one_outlier_group_fraction']:.2f}"
            if "flat_group_fraction" in cell
            else "– | –"
        )
        out.append(
            f"| {label} | {ci(cell['reward'])} | {ci(cell['gold'])} | {ci(cell['shapes_render_match'])} | "
            f"{ci(cell['shapes_render_fit'])} | {shape} |"
        )
    if "p_difference" in a:
        d = a["p_difference"]
        out += [
            "",
            "The p cells train on `shapes_accuracy`, the checker's hard score (0, ¼, ½, ¾, 1): a reward whose "
            "groups are often flat or have one outlier, where Eq. 11's reweighting acts. Their trained reward "
            f"is held-out accuracy (base {base['shapes_accuracy']:.3f}). p = 0.8 − p = 2: trained reward "
            f"{signed(d['reward'])}; gold {signed(d['gold'])}.",
        ]
    out += [
        "",
        f"Raw data: `{rel(r['json'])}` (every run's curve under `runs`).",
        END,
    ]
    return "\n".join(out) + "\n"


def plot(r: dict, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    base = r["base"]["eval"]
    for axis, key, title in (
        (axes[0], "reward", "held-out fidelity reward (trained)"),
        (axes[1], "gold", "gold (render match + fit, not trained)"),
    ):
        for method in METHOD_ORDER:
            curve = r["methods"][method]["curve"]
            xs = [0.0] + [p["seconds"] for p in curve]
            mean = [base[key]] + [p[key]["mean"] for p in curve]
            low = [base[key]] + [p[key]["low"] for p in curve]
            high = [base[key]] + [p[key]["high"] for p in curve]
            label = f"{r['methods'][method]['label']} (lr {r['methods'][method]['learning_rate']:g})"
            axis.plot(xs, mean, "o-", color=COLOURS[method], label=label)
            axis.fill_between(xs, low, high, color=COLOURS[method], alpha=0.2)
        target = r["time_to_target"]["target"]
        if key == "reward" and target is not None:
            axis.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
        axis.set(title=title, xlabel="training seconds (iterations × measured s/iter, 1 thread)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle(f"mean and 95 % interval over {len(r['seeds'])} seeds" + ("  (--quick)" if r["quick"] else ""))
    fig.tight_layout()
    written.append(_save(fig, folder / "curves.png", plt))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for axis, key, title in ((axes[0], "reward", "final held-out reward"), (axes[1], "gold", "final gold")):
        for method in METHOD_ORDER:
            lrs = [lr for lr, cell in r["sweep"][method].items() if "diverged" not in cell]
            cells_ = [r["sweep"][method][lr][key] for lr in lrs]
            xs = [float(lr) for lr in lrs]
            means = [c["mean"] for c in cells_]
            errors = [[c["mean"] - c["low"] for c in cells_], [c["high"] - c["mean"] for c in cells_]]
            axis.errorbar(
                xs, means, yerr=errors, fmt="o-", capsize=4, color=COLOURS[method], label=r["methods"][method]["label"]
            )
        axis.axhline(
            base_value := r["base"]["eval"][key],
            color="grey",
            linestyle=":",
            linewidth=1,
            label=f"base {base_value:.3f}",
        )
        axis.set_xscale("log")
        axis.set(title=title, xlabel="learning rate")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, folder / "lr_sweep.png", plt))

    cells = r["ablations"]["cells"]
    labels = [label for label, cell in cells.items() if "diverged" not in cell]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, key in ((axes[0], "reward"), (axes[1], "gold")):
        means = [cells[label][key]["mean"] for label in labels]
        errors = [
            [m - cells[label][key]["low"] for m, label in zip(means, labels, strict=True)],
            [cells[label][key]["high"] - m for m, label in zip(means, labels, strict=True)],
        ]
        axis.bar(range(len(labels)), means, yerr=errors, capsize=4, color="tab:blue", alpha=0.7)
        axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        axis.set_ylim(
            min(cells[label][key]["low"] for label in labels) - 0.02,
            max(cells[label][key]["high"] for label in labels) + 0.02,
        )
        axis.set_title(
            f"{'trained reward' if key == 'reward' else 'gold'} after {r['ablations']['iterations']} iterations"
        )
        axis.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    written.append(_save(fig, folder / "ablations.png", plt))
    return written


def _save(fig, path: Path, plt) -> str:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def write_report(r: dict, docs: Path, plots_folder: Path) -> list[str]:
    """Writes the plots and replaces the generated part of `docs` (between the markers; text a
    person wrote after them stays)."""
    plots = plot(r, plots_folder)
    generated = report_markdown(r, plots, docs)
    old = docs.read_text(encoding="utf-8") if docs.is_file() else ""
    kept = old.split(END, 1)[1].lstrip("\n") if END in old else ""
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(generated + ("\n" + kept if kept else ""), encoding="utf-8")
    return [str(docs), *plots]
