"""Several rewards as one: raw scores per reward, combined as a weighted sum of per-group z-scores.

Z-scoring each reward inside each GRPO group before weighting (as MixGRPO does) keeps a reward
with a wide raw range (JPEG kB) from drowning one in 0..1 (fidelity), and makes the weights mean
what they say. The trainer calls `RewardSet.from_specs`, `.score` and `.combine`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

from .base import Reward, RewardError
from .registry import build_reward
from .spec import RewardSpec

# Relative spread below which a group counts as flat (every image scored the same): its z-scores
# are zero, not float noise blown up to ±1.
_FLAT_TOLERANCE = 1e-6


def unique_keys(specs: Sequence[RewardSpec]) -> list[str]:
    """One key per spec: the name, or for a repeated name the options that tell the copies apart."""
    counts = Counter(spec.name for spec in specs)
    keys: list[str] = []
    for spec in specs:
        key = spec.name
        if counts[spec.name] > 1:
            same_name = [other for other in specs if other.name == spec.name]
            differing = sorted(
                k
                for k in {k for other in same_name for k in other.options}
                if len({str(other.options.get(k)) for other in same_name}) > 1
            )
            if differing:
                key += "[" + ",".join(f"{k}={spec.options.get(k)}" for k in differing) + "]"
        base, copy = key, 2
        while key in keys:
            key, copy = f"{base}#{copy}", copy + 1
        keys.append(key)
    return keys


def group_zscores(scores: torch.Tensor, group_size: int, std_floor: float = 0.0) -> torch.Tensor:
    """(x − mean) / std within each consecutive group of `group_size` (population std); flat → 0.

    With `std_floor` f > 0 the divisor is max(std, f · s̄), s̄ the root-mean-square of the groups'
    stds in this batch: a group in which the reward barely varies keeps its small differences small
    instead of having them blown up to ±1 (its z-score there is mostly noise), while the reward's
    scale still cancels (s̄ carries its units), so weights compare rewards of any range.
    """
    if group_size < 1 or scores.shape[0] % group_size:
        raise ValueError(f"{scores.shape[0]} scores do not split into groups of {group_size}")
    if std_floor < 0:
        raise ValueError(f"std_floor must be 0 or more, got {std_floor}")
    groups = scores.double().reshape(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, unbiased=False, keepdim=True)
    if std_floor > 0:
        std = torch.clamp(std, min=std_floor * std.pow(2).mean().sqrt().item())
    flat = std <= _FLAT_TOLERANCE * (1.0 + groups.abs().mean(dim=1, keepdim=True))
    z = torch.where(flat, torch.zeros_like(centred), centred / torch.where(flat, torch.ones_like(std), std))
    return z.reshape(-1).to(scores.dtype)


class RewardSet:
    def __init__(self, specs: Sequence[RewardSpec], rewards: Sequence[Reward]):
        if not specs:
            raise ValueError("a RewardSet needs at least one reward")
        self.specs = list(specs)
        self.names = unique_keys(self.specs)
        self.rewards = dict(zip(self.names, rewards, strict=True))
        self.weights = {key: spec.weight for key, spec in zip(self.names, self.specs, strict=True)}

    @classmethod
    def from_specs(cls, specs: Sequence[RewardSpec | str | dict], device: str | torch.device = "cpu") -> RewardSet:
        """Build every reward (loading weights now, so a bad path fails before training starts)."""
        specs = [spec if isinstance(spec, RewardSpec) else RewardSpec.from_dict(spec) for spec in specs]
        return cls(specs, [build_reward(spec, device) for spec in specs])

    @property
    def versions(self) -> dict[str, str]:
        return {key: reward.version for key, reward in self.rewards.items()}

    def score(self, images: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Raw scores [B] of every reward, keyed by `names`; each reward splits by its batch size."""
        return {key: reward.score(images, prompts) for key, reward in self.rewards.items()}

    def _checked(self, raw: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        missing = [key for key in self.names if key not in raw]
        if missing:
            raise ValueError(f"no scores for reward(s) {missing}; expected keys {self.names}")
        columns = [raw[key] for key in self.names]
        lengths = {column.shape[0] for column in columns}
        if len(lengths) != 1 or any(column.ndim != 1 for column in columns):
            raise ValueError(f"reward scores must all be [N] of one length, got {[tuple(c.shape) for c in columns]}")
        for key, column in zip(self.names, columns, strict=True):
            if not torch.isfinite(column).all():
                raise RewardError(f"reward {key!r} has non-finite scores {column.tolist()[:8]}")
        return columns

    def combine(self, raw: dict[str, torch.Tensor], group_size: int, std_floor: float = 0.0) -> torch.Tensor:
        """Σ_k weight_k · z_k, z-scored within each consecutive group of `group_size` → [N];
        `std_floor` as in `group_zscores`."""
        columns = self._checked(raw)
        total = torch.zeros_like(columns[0], dtype=torch.float32)
        for key, column in zip(self.names, columns, strict=True):
            total += self.weights[key] * group_zscores(column.float(), group_size, std_floor)
        return total

    def weighted_sum(self, raw: dict[str, torch.Tensor]) -> torch.Tensor:
        """Σ_k weight_k · raw_k → [N]: a readable total for single images (no groups to z-score)."""
        columns = self._checked(raw)
        return sum(self.weights[key] * column.float() for key, column in zip(self.names, columns, strict=True))

    def __repr__(self) -> str:
        return f"RewardSet({', '.join(f'{k}×{w:g}' for k, w in self.weights.items())})"
