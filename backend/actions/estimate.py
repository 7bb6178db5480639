"""How long an iteration will take, from what the registry recorded for similar runs."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from typing import Any

from ...storage import history, runs
from ..models.memory import MemoryEstimate, plan_memory
from ..training.config import TrainConfig
from .errors import action

Home = str | os.PathLike | None
SIMILAR_RUNS = 5  # the newest runs of the same model and algorithm that count


@dataclass(frozen=True)
class Estimate:
    seconds_per_iteration: float
    total_seconds: float
    basis: str  # which runs it comes from, in words


def _samples_per_iteration(config: dict[str, Any]) -> int:
    return int(config.get("group_size", 12)) * int(config.get("prompts_per_iteration", 4))


def _steps(config: dict[str, Any]) -> int:
    settings = config.get("neighbor" if config.get("algorithm", "neighbor_grpo") == "neighbor_grpo" else "sde") or {}
    return int(settings.get("steps", 8))


@action
def estimate_iteration_time(home: Home, config: dict[str, Any]) -> Estimate | None:
    """The median s/iter of recent runs with the same model and algorithm, scaled by samples per
    iteration and solver steps (rollouts dominate); None when no such run has recorded any."""
    model, algorithm = config.get("model", "tiny"), config.get("algorithm", "neighbor_grpo")
    similar = [
        run for run in runs.list_runs(home) if run.model == model and run.algorithm == algorithm and run.progress_step
    ][:SIMILAR_RUNS]
    scaled = []
    for run in similar:
        series = history.metric_series(home, run.id, ["s_per_iter"], max_points=200).get("s_per_iter", [])
        if not series:
            continue
        ratio = (_samples_per_iteration(config) * _steps(config)) / (
            _samples_per_iteration(run.config) * _steps(run.config)
        )
        scaled.append(statistics.median(value for _, value in series) * ratio)
    if not scaled:
        return None
    seconds = statistics.median(scaled)
    iterations = int(config.get("iterations", 100))
    basis = f"median of {len(scaled)} earlier {model} {algorithm} run(s), scaled to this batch and step count"
    return Estimate(seconds, seconds * iterations, basis)


@action
def estimate_memory(config: dict[str, Any], budget_gb: float | None = None) -> MemoryEstimate | None:
    """Peak GPU memory of a real-model (SD3/FLUX) run from its config and the model files' headers
    (nothing loaded), against `budget_gb` or the total memory of its CUDA device; None for the
    embedded tiny model. `summary()` is the text to show; `fits` False means queueing will refuse."""
    parsed = TrainConfig.from_dict(config)
    return plan_memory(parsed, budget_gb, parsed.device)
