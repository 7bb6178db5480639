"""Shapes-world prompt fidelity from the pixel checker: no weights, exact, and cheap on a CPU.

`shapes_fidelity` (mean of the soft per-attribute scores) is continuous, so images in a GRPO group
rarely tie; `shapes_accuracy` (fraction of attributes exactly right) is the discrete, heavily tied
version, and a metric to monitor. None of them can be the gold metric of a run trained on another
(they are one measurement); `shapes_render_match` (render_match.py) is the independent one. One
soft reward per attribute lets a run target one weakness.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..world.checker import CheckResult, check_batch
from ..world.shapes import ATTRIBUTES
from .base import Reward
from .registry import RewardEntry, register_reward

_VERSION = "1"
# Every reward here is a summary of one checker pass: for the gold rule they are one signal, so
# none of them can be the gold metric of a run that trains on another (independence.py).
SIGNAL = "shapes_checker"


class ShapesReward(Reward):
    default_batch_size = 256

    def __init__(self, name: str, summary: Callable[[CheckResult], float], batch_size: int | None = None):
        self.name = name
        self.version = _VERSION
        self._summary = summary
        # The checker is numpy code: it runs on the CPU whatever device the trainer uses.
        super().__init__("cpu", batch_size)

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return torch.tensor([self._summary(result) for result in check_batch(images, prompts)])


def _attribute(name: str) -> Callable[[CheckResult], float]:
    return lambda result: result.soft[name]


def _register(name: str, summary: Callable[[CheckResult], float], description: str) -> None:
    register_reward(
        RewardEntry(
            name=name,
            version=_VERSION,
            description=description,
            build=lambda options, device: ShapesReward(name, summary, options.integer("batch_size", None)),
            signal=SIGNAL,
        )
    )


_register("shapes_fidelity", lambda r: r.soft_score, "shapes world: mean soft attribute score (0..1)")
_register("shapes_accuracy", lambda r: r.accuracy, "shapes world: fraction of attributes exactly right")
_register(
    "shapes_clean",
    lambda r: r.cleanliness,
    "shapes world: how plain the background is away from the shape (0..1); catches streaks and textures",
)
for _name in ATTRIBUTES:
    _register(f"shapes_{_name}", _attribute(_name), f"shapes world: soft score of the {_name} alone (0..1)")
