"""Shapes-world gold metrics by fitting the world's own renderer (world/render_match.py).

They share no logic with the checker behind `shapes_fidelity` and its relatives, so they are the
embedded default's independent gold metrics: `shapes_render_match` (attribute accuracy of the
nearest rendering) and `shapes_render_fit` (closeness to the best rendering of the prompt).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..world.render_match import match_accuracy, render_fit
from .base import Reward
from .registry import RewardEntry, register_reward

_VERSION = "1"


class RenderMatchReward(Reward):
    default_batch_size = 128

    def __init__(self, name: str, score: Callable[[torch.Tensor, list[str]], torch.Tensor], batch_size: int | None):
        self.name = name
        self.version = _VERSION
        self._score = score
        super().__init__("cpu", batch_size)

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self._score(images, prompts)


def _register(name: str, score: Callable[[torch.Tensor, list[str]], torch.Tensor], description: str) -> None:
    register_reward(
        RewardEntry(
            name=name,
            version=_VERSION,
            description=description,
            build=lambda options, device: RenderMatchReward(name, score, options.integer("batch_size", None)),
            signal="shapes_render",
        )
    )


_register(
    "shapes_render_match",
    match_accuracy,
    "shapes world: fraction of attributes right in the nearest rendering (independent of the checker)",
)
_register(
    "shapes_render_fit",
    render_fit,
    "shapes world: exp(−RMSE/0.2) to the best rendering of the prompt (image quality; independent of the checker)",
)
