"""The runs behind bench/paper_table.py: the cost phase and single-thread quality runs.

Quality per iteration does not depend on how busy the machine is; seconds do. So seconds come from
one short cost phase that times both methods side by side (interleaved iterations, one thread
each), and every quality run is measured in iterations, then placed on the time axis as
iterations × that method's measured s/iter. Quality runs can then run as parallel single-thread
processes without their contention leaking into any reported time.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from neighbor_grpo.backend.training.config import TrainConfig
from neighbor_grpo.backend.training.divergence import TrainingDiverged
from neighbor_grpo.backend.training.reporting import ControlFlags
from neighbor_grpo.backend.training.trainer import Trainer

TRAIN_REWARD = "shapes_fidelity"
# What every evaluation reports (besides eval/reward and eval/gold): the independent gold metrics
# and the checker's hard accuracy and cleanliness as monitors.
GOLD = ("shapes_render_match", "shapes_render_fit")
MONITOR = ("shapes_accuracy", "shapes_clean")
# One sampler for both methods, neither one's rollout sampler: Heun, second order, 8 steps.
EVAL_SOLVER, EVAL_STEPS = "heun", 8


def base_config(**changes) -> dict:
    """The paper-table setting; `changes` maps dotted keys ('neighbor.sigma_p') to values."""
    config = {
        "name": "bench",
        "model": "tiny",
        "prompts": "shapes:train",
        "rewards": [{"name": TRAIN_REWARD}],
        "iterations": 100_000,
        "prompts_per_iteration": 4,
        "group_size": 12,
        "seed": 0,
        "checkpoint_every": 100_000,
        "neighbor": {"sigma_p": 0.6, "solver": "dpmpp2m", "steps": 8, "anchors": 4, "trained_steps": 4},
        "sde": {"steps": 25, "train_fraction": 0.6, "eta": 0.3},
        "lora": {"rank": 8, "alpha": 8},
        "optimizer": {"learning_rate": 1e-3, "micro_batch": 64},
        "eval": {
            "every": 0,
            "prompts": "shapes:test",
            "seeds_per_prompt": 2,
            "gallery_size": 0,
            "solver": EVAL_SOLVER,
            "steps": EVAL_STEPS,
            "gold": [{"name": name} for name in GOLD],
            "monitor": [{"name": name} for name in MONITOR],
            # The harness reports gold curves itself; a run stopping early would cut its curve.
            "early_stop_patience": 0,
        },
    }
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        if leaf:
            config[section] = {**config[section], leaf: value}
        else:
            config[key] = value
    return config


class QuietReporter:
    """The trainer's reporter interface, keeping nothing (the harness reads return values)."""

    def metrics(self, step, values) -> None: ...
    def poll(self) -> ControlFlags:
        return ControlFlags()

    def samples(self, step, records) -> None: ...
    def checkpoint(self, record) -> None: ...
    def progress(self, step, total) -> None: ...
    def rewind(self, step) -> None: ...
    def flush(self) -> None: ...


def _trainer(config: dict, folder: str) -> Trainer:
    trainer = Trainer(TrainConfig.from_dict(config), Path(folder), QuietReporter())
    trainer._setup()  # the harness drives iterations and evaluations itself (no step-0 evaluation per run)
    return trainer


def _eval_values(metrics: dict[str, float], prefix: str = "eval") -> dict[str, float]:
    return {key.split("/", 1)[1]: value for key, value in metrics.items() if key.startswith(prefix + "/")}


def measure_cost(configs: dict[str, dict], rounds: int, threads: int = 1) -> dict[str, dict]:
    """s/iter of each method, iterations interleaved (A B, B A, ...) so that a change in machine
    load hits every method alike; one warm-up iteration each is not counted."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        trainers = {key: _trainer(config, f"{folder}/{key}") for key, config in configs.items()}
        samples: dict[str, list[dict]] = {key: [] for key in configs}
        for trainer in trainers.values():
            trainer.iteration()
        order = list(trainers)
        for round_index in range(rounds):
            for key in order if round_index % 2 == 0 else reversed(order):
                samples[key].append(trainers[key].iteration())
    result = {}
    for key, rows in samples.items():
        result[key] = {
            "s_per_iter": statistics.median(r["s_per_iter"] for r in rows),
            "samples": [r["s_per_iter"] for r in rows],
            **{part: statistics.median(r[part] for r in rows) for part in ("rollout_s", "reward_s", "train_s")},
            "nfe_old": rows[0]["nfe_old"],
            "nfe_theta": rows[0]["nfe_theta"],
        }
    return result


def evaluate_base(config: dict, rollout_sampler: bool) -> dict[str, dict[str, float]]:
    """The untrained model (LoRA up-projections start at zero) on the eval sampler, and optionally
    on this config's rollout sampler: shared by every run, so measured once."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        trainer = _trainer(config, folder)
        result = {"eval": _eval_values(trainer.evaluator.evaluate(trainer.model, 0, trainer.reporter))}
        if rollout_sampler:
            result["rollout"] = _eval_values(trainer.evaluator.evaluate_rollout_sampler(trainer.model), "eval_rollout")
    return result


def _group_shape(values: torch.Tensor, group_size: int) -> tuple[float, float]:
    """Fractions of groups whose rewards are all equal, and of groups where all but one tie."""
    flat = outlier = 0
    groups = values.float().view(-1, group_size)
    for group in groups:
        _, counts = torch.unique(group, return_counts=True)
        flat += len(counts) == 1
        outlier += len(counts) == 2 and int(counts.min()) == 1
    return flat / len(groups), outlier / len(groups)


def run_job(job: dict) -> dict:
    """One quality run: `iterations` GRPO iterations, evaluations after the listed ones, and the
    final model also on its own rollout sampler when asked. Single-threaded by design."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    config = job["config"]
    group_size = config["group_size"]
    curve, shapes = [], []
    with tempfile.TemporaryDirectory() as folder:
        trainer = _trainer(config, folder)
        score = trainer.rewards.score
        first_reward = trainer.rewards.names[0]

        rolling_out = [False]

        def scored(images, prompts):  # group statistics of the trained reward, as rolled out
            raw = score(images, prompts)
            if rolling_out[0]:
                shapes.append(_group_shape(raw[first_reward], group_size))
            return raw

        trainer.rewards.score = scored
        diverged = None
        for iteration in range(1, job["iterations"] + 1):
            rolling_out[0] = True
            try:
                trainer.iteration()
            except TrainingDiverged as error:  # a learning rate too large for this method: a result
                diverged = {"iteration": iteration, "message": str(error)}
                break
            rolling_out[0] = False
            trainer.step = iteration
            if iteration in job["evaluate_at"]:
                values = _eval_values(trainer.evaluator.evaluate(trainer.model, iteration, trainer.reporter))
                curve.append({"iteration": iteration, **values})
        rollout = None
        if job.get("rollout_sampler") and diverged is None:
            rollout = _eval_values(trainer.evaluator.evaluate_rollout_sampler(trainer.model), "eval_rollout")
    return {
        "key": job["key"],
        "iterations": job["iterations"],
        "curve": curve,
        "final": curve[-1] if diverged is None else None,
        "diverged": diverged,
        "final_rollout_sampler": rollout,
        "flat_group_fraction": statistics.mean(s[0] for s in shapes) if shapes else None,
        "one_outlier_group_fraction": statistics.mean(s[1] for s in shapes) if shapes else None,
        "wall_seconds": time.perf_counter() - started,
    }
