"""The paper's claims at small scale, on the embedded model with the shapes-fidelity reward.

    python bench/paper_table.py --json out/paper_table.json [--quick] [--plots docs/paper_table]

1. Cost per iteration, as the paper's table: NFE_old, NFE_θ and s/iter for Neighbor GRPO
   (DPM++ 8 steps, G 12, B 4, K 4) and the SDE baseline (DanceGRPO: 25 steps, 14 trained).
2. Held-out reward versus training wall-clock for both within one time budget, and how soon
   Neighbor GRPO reaches the SDE baseline's best.
3. Ablations of σp, B and p, each with the gold metric (hard attribute accuracy, not trained on)
   beside the training reward.

Wall-clock counts training only (rollout, reward, update); evaluations are paused time. Run it
on an otherwise idle machine: it measures speed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from neighbor_grpo.backend.training.config import TrainConfig
from neighbor_grpo.backend.training.reporting import ControlFlags
from neighbor_grpo.backend.training.trainer import Trainer

GOLD = "eval/shapes_render_match"
REWARD = "eval/shapes_fidelity"


def base_config(**changes) -> dict:
    config = {
        "name": "bench",
        "model": "tiny",
        "prompts": "shapes:train",
        "rewards": [{"name": "shapes_fidelity"}],
        "iterations": 100_000,
        "prompts_per_iteration": 4,
        "group_size": 12,
        "seed": 0,
        "checkpoint_every": 100_000,
        "neighbor": {
            "sigma_p": 0.6,
            "solver": "dpmpp2m",
            "steps": 8,
            "anchors": 4,
            "trained_steps": 4,
            "quasi_norm_p": 0.8,
        },
        "sde": {"steps": 25, "train_fraction": 0.6, "eta": 0.3},
        "lora": {"rank": 8, "alpha": 8},
        "optimizer": {"learning_rate": 1e-3, "micro_batch": 64},
        "eval": {
            "every": 0,
            "prompts": "shapes:test",
            "seeds_per_prompt": 2,
            "gallery_size": 0,
            "gold": [{"name": "shapes_render_match"}],
            "monitor": [{"name": "shapes_accuracy"}],
        },
    }
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        if leaf:
            config[section] = {**config[section], leaf: value}
        else:
            config[key] = value
    return config


class BudgetReporter:
    """Collects metrics in memory; asks for an evaluation at each point of a training-time grid
    and stops the run when the budget is spent."""

    def __init__(self, budget: float, evaluations: int):
        self.budget = budget
        self.grid = [budget * (i + 1) / evaluations for i in range(evaluations)]
        self.train_seconds = 0.0
        self.iterations: list[dict] = []
        self.evals: list[dict] = []

    def metrics(self, step: int, values: dict[str, float]) -> None:
        if "s_per_iter" in values:
            self.train_seconds += values["s_per_iter"]
            self.iterations.append({"step": step, **values})
        if REWARD in values:
            self.evals.append(
                {"step": step, "train_seconds": self.train_seconds, "reward": values[REWARD], "gold": values[GOLD]}
            )

    def poll(self) -> ControlFlags:
        if self.train_seconds >= self.budget:
            return ControlFlags(stop=True)
        due = bool(self.grid) and self.train_seconds >= self.grid[0]
        while self.grid and self.train_seconds >= self.grid[0]:
            self.grid.pop(0)
        return ControlFlags(sample_now=due)

    def samples(self, step, records) -> None: ...
    def checkpoint(self, record) -> None: ...
    def progress(self, step, total) -> None: ...
    def rewind(self, step) -> None: ...
    def flush(self) -> None: ...


def train_for(config: dict, budget: float, evaluations: int, label: str) -> dict:
    reporter = BudgetReporter(budget, evaluations)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(TrainConfig.from_dict(config), Path(run_dir), reporter)
        started = time.perf_counter()
        trainer.run()
        if not reporter.evals or reporter.evals[-1]["step"] != trainer.step:
            reporter.metrics(trainer.step, trainer.evaluator.evaluate(trainer.model, trainer.step, reporter))
        wall = time.perf_counter() - started
    speeds = [row["s_per_iter"] for row in reporter.iterations[1:]] or [reporter.iterations[0]["s_per_iter"]]
    first = reporter.iterations[0]
    result = {
        "label": label,
        "iterations": len(reporter.iterations),
        "train_seconds": reporter.train_seconds,
        "wall_seconds": wall,
        "s_per_iter": statistics.median(speeds),
        "nfe_old": first["nfe_old"],
        "nfe_theta": first["nfe_theta"],
        "curve": reporter.evals,
        "reward_before": reporter.evals[0]["reward"],
        "reward_after": reporter.evals[-1]["reward"],
        "gold_before": reporter.evals[0]["gold"],
        "gold_after": reporter.evals[-1]["gold"],
        "best_reward": max(e["reward"] for e in reporter.evals),
        "best_trained_reward": max((e["reward"] for e in reporter.evals if e["step"] > 0), default=None),
        "breakdown_s": {
            key: statistics.median(r[key] for r in reporter.iterations[1:] or reporter.iterations)
            for key in ("rollout_s", "reward_s", "train_s")
        },
        "flat_group_fraction": statistics.mean(r["flat_group_fraction"] for r in reporter.iterations),
    }
    print(
        f"{label:28s} {result['iterations']:4d} it  {result['s_per_iter']:.2f} s/it  reward "
        f"{result['reward_before']:.3f} → {result['reward_after']:.3f}  gold {result['gold_before']:.3f} → "
        f"{result['gold_after']:.3f}  flat {result['flat_group_fraction']:.2f}",
        flush=True,
    )
    return result


def time_to_reach(curve: list[dict], target: float) -> float | None:
    """Training seconds until the first evaluation after the start that reaches `target`."""
    for point in curve:
        if point["step"] > 0 and point["reward"] >= target:
            return point["train_seconds"]
    return None


def plot(results: dict, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, colour in (("neighbor_grpo", "tab:blue"), ("sde_grpo", "tab:orange")):
        curve = results["main"][key]["curve"]
        times = [p["train_seconds"] for p in curve]
        axes[0].plot(times, [p["reward"] for p in curve], "o-", color=colour, label=key)
        axes[1].plot(times, [p["gold"] for p in curve], "o-", color=colour, label=key)
    axes[0].set(title="held-out fidelity reward (trained)", xlabel="training seconds (2 CPU cores)")
    axes[1].set(title="held-out attribute accuracy (gold)", xlabel="training seconds (2 CPU cores)")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(folder / "reward_vs_time.png", dpi=110)
    written.append(str(folder / "reward_vs_time.png"))
    plt.close(fig)

    ablations = results["ablations"]
    if not ablations:
        return written
    fig, axis = plt.subplots(figsize=(8, 4))
    labels = [a["label"] for a in ablations]
    xs = range(len(labels))
    axis.bar(
        [x - 0.2 for x in xs],
        [a["reward_after"] - a["reward_before"] for a in ablations],
        0.4,
        label="Δ held-out reward",
    )
    axis.bar(
        [x + 0.2 for x in xs], [a["gold_after"] - a["gold_before"] for a in ablations], 0.4, label="Δ gold accuracy"
    )
    axis.set_xticks(list(xs), labels, rotation=30, ha="right")
    axis.axhline(0, color="black", linewidth=0.8)
    axis.legend()
    axis.set_title("Ablations (equal training time each)")
    fig.tight_layout()
    fig.savefig(folder / "ablations.png", dpi=110)
    written.append(str(folder / "ablations.png"))
    plt.close(fig)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plots", type=Path, default=Path("docs/paper_table"))
    parser.add_argument("--quick", action="store_true", help="60 s per method, 20 s per ablation")
    parser.add_argument("--budget", type=float, help="training seconds per method (default 300, quick 60)")
    parser.add_argument("--ablation-budget", type=float, help="training seconds per ablation (default 90, quick 20)")
    parser.add_argument("--skip-ablations", action="store_true", help="only the cost table and the main comparison")
    args = parser.parse_args()
    budget = args.budget or (60.0 if args.quick else 300.0)
    ablation_budget = args.ablation_budget or (20.0 if args.quick else 90.0)
    torch.set_num_threads(torch.get_num_threads())

    main_runs = {
        "neighbor_grpo": train_for(base_config(algorithm="neighbor_grpo"), budget, 15, "Neighbor GRPO"),
        "sde_grpo": train_for(base_config(algorithm="sde_grpo"), budget, 15, "SDE GRPO (DanceGRPO)"),
    }
    ablations = []
    for sigma_p in () if args.skip_ablations else (0.1, 0.3, 0.7):
        ablations.append(train_for(base_config(**{"neighbor.sigma_p": sigma_p}), ablation_budget, 3, f"σp = {sigma_p}"))
    for anchors in () if args.skip_ablations else (1, 2, 4):
        ablations.append(train_for(base_config(**{"neighbor.anchors": anchors}), ablation_budget, 3, f"B = {anchors}"))
    for p in () if args.skip_ablations else (2.0, 0.8):
        ablations.append(train_for(base_config(**{"neighbor.quasi_norm_p": p}), ablation_budget, 3, f"p = {p}"))

    neighbor, sde = main_runs["neighbor_grpo"], main_runs["sde_grpo"]
    # The baseline's best held-out reward once training began (the step-0 evaluation is the base model).
    target = sde["best_trained_reward"]
    t_sde = time_to_reach(sde["curve"], target)
    t_neighbor = time_to_reach(neighbor["curve"], target)
    results = {
        "machine": {
            "cpu_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "budget_seconds": budget,
        "ablation_budget_seconds": ablation_budget,
        "s_per_iter": {"neighbor_grpo": neighbor["s_per_iter"], "sde_grpo": sde["s_per_iter"]},
        "cost_ratio": sde["s_per_iter"] / neighbor["s_per_iter"],
        "target_reward": target,
        "time_to_target_seconds": {"neighbor_grpo": t_neighbor, "sde_grpo": t_sde},
        "time_to_target_ratio": (t_sde / t_neighbor) if t_neighbor and t_sde else None,
        "heldout_fidelity": {k: {"before": v["gold_before"], "after": v["gold_after"]} for k, v in main_runs.items()},
        "main": main_runs,
        "ablations": ablations,
    }
    results["plots"] = plot(results, args.plots)

    print()
    print("| method | rollout | NFE_old | NFE_θ | s/iter | held-out reward | held-out accuracy (gold) |")
    print("|---|---|---|---|---|---|---|")
    for key, rollout in (("sde_grpo", "Euler–Maruyama SDE, 25 steps"), ("neighbor_grpo", "DPM++(2M) ODE, 8 steps")):
        r = main_runs[key]
        print(
            f"| {r['label']} | {rollout} | {r['nfe_old']:.0f} | {r['nfe_theta']:.2f} | {r['s_per_iter']:.2f} | "
            f"{r['reward_before']:.3f} → {r['reward_after']:.3f} | {r['gold_before']:.3f} → {r['gold_after']:.3f} |"
        )
    print(f"\ncost ratio (SDE s/iter ÷ Neighbor s/iter): {results['cost_ratio']:.2f}×")
    ratio = results["time_to_target_ratio"]
    print(
        f"SDE best held-out reward {target:.3f}: SDE reached it at {t_sde:.0f} s, Neighbor GRPO at "
        f"{'never' if t_neighbor is None else f'{t_neighbor:.0f} s'}"
        f"{'' if ratio is None else f' ({ratio:.1f}× sooner)'}"
    )
    print("\n| ablation | iterations | held-out reward | gold accuracy | flat groups |")
    print("|---|---|---|---|---|")
    for a in ablations:
        print(
            f"| {a['label']} | {a['iterations']} | {a['reward_before']:.3f} → {a['reward_after']:.3f} | "
            f"{a['gold_before']:.3f} → {a['gold_after']:.3f} | {a['flat_group_fraction']:.2f} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\nwrote {args.json} and {', '.join(results['plots'])}")


if __name__ == "__main__":
    main()
