"""Pieces both GRPO variants share: the clipped objective and gradient-accumulation helpers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TypeVar

import torch

T = TypeVar("T")
# One generator for a whole batch, or one per prompt group (distributed training draws each
# group's noise from its own stream, so results do not depend on the number of processes).
Generators = torch.Generator | Sequence[torch.Generator]


def per_group(generator: Generators, groups: int) -> Sequence[torch.Generator]:
    if isinstance(generator, torch.Generator):
        return [generator] * groups
    if len(generator) != groups:
        raise ValueError(f"expected one generator per group ({groups}), got {len(generator)}")
    return generator


def grpo_clipped_objective(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """J = mean over the last dim of min(ρ·A, clip(ρ, 1 − ε, 1 + ε)·A), ρ = π_θ / π_θold.

    Returns J per row and a mask of the terms where clipping was active (for the clip fraction).
    Works for Neighbor GRPO's [n, G] candidate policy and for the SDE baseline's [n] log-probs.
    """
    ratio = torch.exp(log_probs - old_log_probs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon) * advantages
    objective = torch.minimum(unclipped, clipped)
    if objective.ndim > 1:
        objective = objective.mean(dim=-1)
    return objective, clipped < unclipped


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TrainStats:
    """Sums of per-micro-batch statistics (already weighted by the caller)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = defaultdict(float)

    def add(self, **values: float) -> None:
        for name, value in values.items():
            self.values[name] += value

    def merge(self, other: TrainStats) -> None:
        self.add(**other.values)
