"""The paper's claims at small scale, on the embedded model, with seeds and 95 % intervals.

    python bench/paper_table.py --json out.json [--quick] [--docs docs/paper_table.md]

1. Cost per iteration of both methods, timed side by side in one short phase (the cost ratio).
2. The same learning-rate sweep for Neighbor GRPO and the SDE baseline (DanceGRPO setting), each
   reported at its best; ≥ 3 seeds everywhere. Held-out reward and the independent gold metric
   (renderer fit, not trained on) on one shared evaluation sampler, and each method on its own
   rollout sampler at the end.
3. Time to a target fixed by a rule before the runs: base + half the larger mean gain.
4. Ablations of σp and B, and p = 0.8 vs p = 2 on a discrete reward where groups tie.

Time: quality runs are single-thread processes measured in iterations; training seconds are
iterations × the s/iter measured in phase 1 (one thread). See bench/paper_runs.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper_report import write_report
from paper_runs import base_config, evaluate_base, measure_cost, run_job
from paper_stats import difference, interval, ratio, target_rule, time_to_target

METHODS = {"neighbor_grpo": "Neighbor GRPO", "sde_grpo": "SDE GRPO (DanceGRPO setting)"}
FULL = {
    # Single-thread training seconds per main run: sized so that the whole command takes about 23
    # minutes on 2 idle cores (Neighbor ≈ 1.5 s/iter, SDE ≈ 8 s/iter, a Heun-8 evaluation ≈ 5.5 s).
    "budget": 64.0,
    # Short budgets favour larger steps; the same three for both methods (1e-4 was clearly slow in
    # earlier, longer runs), so neither is tuned alone.
    "learning_rates": [1e-3, 3e-3, 1e-2],
    "seeds": [0, 1, 2],
    "evaluations": 4,  # per main run, evenly spaced in iterations; ablations stop at the middle one
    "cost_rounds": 5,
    "eval_prompts": None,  # all 60 held-out prompts × 2 seeds
    "eval_seeds": 2,
    "sigma_p": [0.3, 0.9],  # beside the main setting's 0.6
    "anchors": [1, 2],  # beside the main setting's 4
    "quasi_norm_p": [0.8, 2.0],
}
QUICK = {
    **FULL,
    "budget": 12.0,
    "learning_rates": [1e-3],
    "evaluations": 2,
    "cost_rounds": 2,
    "eval_prompts": 16,
    "eval_seeds": 1,
    "sigma_p": [0.3],
    "anchors": [2],
}
# The discrete, heavily tied reward for the p test: the checker's hard accuracy (0, ¼, ½, ¾ or 1).
TIED_REWARD = "shapes_accuracy"


def config_for(settings: dict, **changes) -> dict:
    changes.setdefault("eval.max_prompts", settings["eval_prompts"])
    changes.setdefault("eval.seeds_per_prompt", settings["eval_seeds"])
    return base_config(**changes)


def grid(iterations: int, evaluations: int) -> list[int]:
    points = sorted({max(1, round(iterations * (k + 1) / evaluations)) for k in range(evaluations)})
    return points


def run_all(jobs: list[dict], pool: ProcessPoolExecutor) -> dict[str, dict]:
    """Longest jobs first, so the last ones to finish are short."""
    ordered = sorted(jobs, key=lambda job: -job["estimate"])
    futures = {job["key"]: pool.submit(run_job, job) for job in ordered}
    results = {}
    for key, future in futures.items():
        results[key] = future.result()
        print(f"  done {key}", flush=True)
    return results


def main_jobs(settings: dict, cost: dict) -> list[dict]:
    jobs = []
    for method in METHODS:
        iterations = max(settings["evaluations"], round(settings["budget"] / cost[method]["s_per_iter"]))
        for lr in settings["learning_rates"]:
            for seed in settings["seeds"]:
                jobs.append(
                    {
                        "key": f"main/{method}/{lr:g}/{seed}",
                        "config": config_for(settings, algorithm=method, seed=seed, **{"optimizer.learning_rate": lr}),
                        "iterations": iterations,
                        "evaluate_at": grid(iterations, settings["evaluations"]),
                        "rollout_sampler": True,
                        "estimate": settings["budget"],
                    }
                )
    return jobs


def ablation_jobs(settings: dict, lr: float, iterations: int, s_per_iter: float) -> list[dict]:
    cells = [(f"sigma_p={v:g}", {"neighbor.sigma_p": v}) for v in settings["sigma_p"]]
    cells += [(f"anchors={v}", {"neighbor.anchors": v}) for v in settings["anchors"]]
    cells += [
        (f"p={v:g}", {"neighbor.quasi_norm_p": v, "rewards": [{"name": TIED_REWARD}]}) for v in settings["quasi_norm_p"]
    ]
    return [
        {
            "key": f"ablation/{label}/{seed}",
            "config": config_for(settings, seed=seed, **{"optimizer.learning_rate": lr}, **changes),
            "iterations": iterations,
            "evaluate_at": [iterations],
            "estimate": iterations * s_per_iter,
        }
        for label, changes in cells
        for seed in settings["seeds"]
    ]


def summarise_main(settings: dict, cost: dict, base: dict, runs: dict) -> dict:
    sweep, methods, curves = {}, {}, {}
    for method in METHODS:
        sweep[method] = {}
        for lr in settings["learning_rates"]:
            group = [runs[f"main/{method}/{lr:g}/{seed}"] for seed in settings["seeds"]]
            sweep[method][f"{lr:g}"] = _cell(group)
        stable = [lr for lr in settings["learning_rates"] if "diverged" not in sweep[method][f"{lr:g}"]]
        if not stable:
            raise RuntimeError(f"{method} diverged at every learning rate of the sweep; lower them")
        best = max(stable, key=lambda lr: sweep[method][f"{lr:g}"]["reward"]["mean"])
        group = [runs[f"main/{method}/{best:g}/{seed}"] for seed in settings["seeds"]]
        s_per_iter = cost[method]["s_per_iter"]
        points = [p["iteration"] for p in group[0]["curve"]]
        methods[method] = {
            "label": METHODS[method],
            "learning_rate": best,
            "iterations": group[0]["iterations"],
            "train_seconds": group[0]["iterations"] * s_per_iter,
            "final": sweep[method][f"{best:g}"],
            "final_rollout_sampler": {
                name: interval([r["final_rollout_sampler"][name] for r in group]) for name in ("reward", *_REPORTED)
            },
            "base_rollout_sampler": base[method]["rollout"],
            "curve": [
                {
                    "iteration": it,
                    "seconds": it * s_per_iter,
                    **{name: interval([r["curve"][i][name] for r in group]) for name in ("reward", *_REPORTED)},
                }
                for i, it in enumerate(points)
            ],
            "flat_group_fraction": statistics.fmean(r["flat_group_fraction"] for r in group),
        }
        curves[method] = [
            [(0.0, base["eval"]["reward"])] + [(p["iteration"] * s_per_iter, p["reward"]) for p in r["curve"]]
            for r in group
        ]
    gains = {m: methods[m]["final"]["reward"]["mean"] - base["eval"]["reward"] for m in METHODS}
    target = target_rule(base["eval"]["reward"], gains)
    ttt = {
        "rule": "base + 0.5 × max over methods of the mean final gain in held-out reward (fixed before the runs)",
        "base": base["eval"]["reward"],
        "target": target,
        "gains": gains,
    }
    for method in METHODS:
        if target is not None:
            ttt[method] = time_to_target(curves[method], target)
        else:  # no progress to time: nobody reached anything
            ttt[method] = {"reached": False, "seeds_reached": 0, "seeds": len(curves[method]), "seconds_mean": None}
    both = [ttt[m] for m in METHODS if ttt[m]["reached"]]
    ttt["ratio_sde_over_neighbor"] = (
        ttt["sde_grpo"]["seconds_mean"] / ttt["neighbor_grpo"]["seconds_mean"] if len(both) == 2 else None
    )
    ttt["ratio_sde_over_neighbor_ci"] = (
        ratio(ttt["sde_grpo"]["seconds_per_seed"], ttt["neighbor_grpo"]["seconds_per_seed"]) if len(both) == 2 else None
    )
    values = {
        m: [runs[f"main/{m}/{methods[m]['learning_rate']:g}/{s}"]["final"] for s in settings["seeds"]] for m in METHODS
    }
    comparison = {
        name: difference([v[name] for v in values["neighbor_grpo"]], [v[name] for v in values["sde_grpo"]])
        for name in ("reward", *_REPORTED)
    }
    return {"sweep": sweep, "methods": methods, "time_to_target": ttt, "neighbor_minus_sde": comparison}


_REPORTED = ("gold", "shapes_render_match", "shapes_render_fit", "shapes_accuracy", "shapes_clean")


def _cell(group: list[dict]) -> dict:
    """Intervals of the final values over seeds, or how many seeds diverged (then no values: the
    remaining seeds would be a selected, flattering subset)."""
    diverged = sum(r["diverged"] is not None for r in group)
    if diverged:
        return {"diverged": diverged, "seeds": len(group)}
    return {name: interval([r["final"][name] for r in group]) for name in ("reward", *_REPORTED)}


def summarise_ablations(settings: dict, main: dict, runs: dict, iterations: int) -> dict:
    lr = main["methods"]["neighbor_grpo"]["learning_rate"]
    reference = [
        next(p for p in runs[f"main/neighbor_grpo/{lr:g}/{seed}"]["curve"] if p["iteration"] == iterations)
        for seed in settings["seeds"]
    ]
    cells = {"sigma_p=0.6 (main)": reference, "anchors=4 (main)": reference}
    health = {}
    labels = [f"sigma_p={v:g}" for v in settings["sigma_p"]] + [f"anchors={v}" for v in settings["anchors"]]
    labels += [f"p={v:g}" for v in settings["quasi_norm_p"]]
    out = {"iterations": iterations, "learning_rate": lr, "cells": {}}
    for label in labels:
        group = [runs[f"ablation/{label}/{seed}"] for seed in settings["seeds"]]
        out["cells"][label] = _cell(group)
        if "diverged" in out["cells"][label]:
            continue
        cells[label] = [r["final"] for r in group]
        health[label] = {
            "flat_group_fraction": statistics.fmean(r["flat_group_fraction"] for r in group),
            "one_outlier_group_fraction": statistics.fmean(r["one_outlier_group_fraction"] for r in group),
        }
    for label, finals in cells.items():
        out["cells"][label] = {
            **{name: interval([f[name] for f in finals]) for name in ("reward", *_REPORTED)},
            **health.get(label, {}),
        }
    out["cells"] = {label: out["cells"][label] for label in [*[k for k in cells if "main" in k], *labels]}
    p_values = [f"p={v:g}" for v in settings["quasi_norm_p"]]
    if len(p_values) == 2 and all(p in cells for p in p_values):
        a, b = cells[p_values[0]], cells[p_values[1]]
        out["p_difference"] = {
            name: difference([f[name] for f in a], [f[name] for f in b]) for name in ("reward", *_REPORTED)
        }
    return out


def resummarise(results: dict) -> dict:
    """The summaries again from the stored runs (after a change to the statistics): no run is
    repeated, and every figure still comes from the same measured curves."""
    settings, runs = results["settings"], results["runs"]
    main_summary = summarise_main(settings, results["cost"], results["base"], runs)
    iterations = main_summary["methods"]["neighbor_grpo"]["curve"][settings["evaluations"] // 2 - 1]["iteration"]
    return {
        **results,
        **main_summary,
        "ablations": summarise_ablations(settings, main_summary, runs, iterations),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a pipeline check: 12 s budgets, 1 learning rate")
    parser.add_argument("--docs", type=Path, default=Path("docs/paper_table.md"), help="the report to (re)write")
    parser.add_argument("--plots", type=Path, default=Path("docs/paper_table"))
    parser.add_argument("--workers", type=int, default=2, help="parallel single-thread quality runs")
    parser.add_argument("--budget", type=float, help="single-thread training seconds per main run")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the docs and plots from --json, run nothing"
    )
    args = parser.parse_args()
    if args.report_only:
        results = resummarise(json.loads(args.json.read_text(encoding="utf-8")))
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
        written = write_report(results, args.docs, args.plots)
        print(f"wrote {args.json}, {', '.join(written)}")
        return
    settings = dict(QUICK if args.quick else FULL)
    if args.budget:
        settings["budget"] = args.budget
    started = time.time()
    loads = [("start", os.getloadavg())]

    print("phase 1: cost per iteration, both methods interleaved, one thread", flush=True)
    cost = measure_cost({m: config_for(settings, algorithm=m) for m in METHODS}, settings["cost_rounds"])
    cost_ratio = cost["sde_grpo"]["s_per_iter"] / cost["neighbor_grpo"]["s_per_iter"]
    loads.append(("after cost phase", os.getloadavg()))
    print({m: round(c["s_per_iter"], 3) for m, c in cost.items()}, f"ratio {cost_ratio:.2f}", flush=True)

    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        print("phase 2: base model, learning-rate sweep × seeds", flush=True)
        base_futures = {m: pool.submit(evaluate_base, config_for(settings, algorithm=m), True) for m in METHODS}
        runs = run_all(main_jobs(settings, cost), pool)
        base = {m: f.result() for m, f in base_futures.items()}
        base["eval"] = base["neighbor_grpo"]["eval"]
        main_summary = summarise_main(settings, cost, base, runs)
        loads.append(("after sweep", os.getloadavg()))

        print("phase 3: ablations at Neighbor GRPO's best learning rate", flush=True)
        iterations = main_summary["methods"]["neighbor_grpo"]["curve"][settings["evaluations"] // 2 - 1]["iteration"]
        lr = main_summary["methods"]["neighbor_grpo"]["learning_rate"]
        runs.update(run_all(ablation_jobs(settings, lr, iterations, cost["neighbor_grpo"]["s_per_iter"]), pool))
        ablations = summarise_ablations(settings, main_summary, runs, iterations)
        loads.append(("end", os.getloadavg()))

    results = {
        "quick": args.quick,
        "settings": settings,
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads_per_run": 1,
            "workers": args.workers,
            "platform": platform.platform(),
            "torch": torch.__version__,
            "load_average": [{"when": when, "1min": a, "5min": b, "15min": c} for when, (a, b, c) in loads],
            "wall_seconds": time.time() - started,
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        },
        "cost": cost,
        "cost_ratio": cost_ratio,
        "seeds": settings["seeds"],
        "base": base,
        **main_summary,
        "ablations": ablations,
        "runs": runs,
    }
    results["json"] = str(args.json)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    written = write_report(results, args.docs, args.plots)
    print(f"wrote {args.json}, {', '.join(written)} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
