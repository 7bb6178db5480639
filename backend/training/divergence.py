"""Stopping a run whose update went non-finite, before the optimizer writes NaN into the weights.

One NaN gradient step turns every later sample into noise and every later checkpoint into a
broken LoRA; failing at once keeps the last good checkpoint the newest one and says what to change.
"""

from __future__ import annotations

import math

import torch


class TrainingDiverged(ValueError):
    """The loss or gradient became NaN or infinite; the message says where and what to try."""


def check_finite_update(iteration: int, grad_norm: torch.Tensor | float, stats: dict[str, float]) -> None:
    bad = {name: value for name, value in stats.items() if isinstance(value, float) and not math.isfinite(value)}
    norm = float(grad_norm)
    if not math.isfinite(norm):
        bad["grad_norm"] = norm
    if bad:
        found = ", ".join(f"{name}={value}" for name, value in sorted(bad.items()))
        raise TrainingDiverged(
            f"training diverged at iteration {iteration} ({found}); the weights were not updated. "
            "Lower optimizer.learning_rate, keep optimizer.grad_clip small, or try optimizer.mixed_precision: no, "
            "then resume from the last checkpoint"
        )
