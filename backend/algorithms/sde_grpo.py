"""The SDE-based GRPO baseline (DanceGRPO-style; Flow-GRPO's noise schedule as an option).

The whole group starts from the same initial noise; randomness comes from Euler–Maruyama steps
x' ~ N(μ_θ(x, σ), s²) with μ = x + dσ·v − ½η²·score·dσ, score = −(x − (1 − σ)·x̂0)/σ²,
s = η·√(σ − σ'), so each step has a Gaussian policy whose log-probability GRPO can ratio.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from .. import solvers
from ..models.base import Conditioning, FlowModel
from ..training.config import SdeSettings
from .common import Generators, TrainStats, chunks, grpo_clipped_objective, per_group
from .neighbor_grpo import group_zscore

Autocast = Callable[[], AbstractContextManager]


def noise_level(settings: SdeSettings, sigma: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """η(σ): constant for DanceGRPO; Flow-GRPO's a·√(σ / (1 − σ)).

    At σ = 1 the denominator vanishes; Flow-GRPO replaces σ there by the next level σ_max in the
    denominator only, so the first step keeps its numerator σ = 1 (capping both would shrink the
    first step's noise as well)."""
    if settings.noise_schedule == "dance":
        return torch.full_like(sigma, settings.eta)
    return settings.flow_grpo_a * torch.sqrt(sigma / (1.0 - sigma.clamp(max=sigma_max)))


def sde_step(
    x: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor, eta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of one Euler–Maruyama step (σ, x) → σ'; σ, σ', η are per-row [n]."""
    shape = (-1, *([1] * (x.ndim - 1)))
    sigma, sigma_next, eta = sigma.view(shape), sigma_next.view(shape), eta.view(shape)
    dsigma = sigma_next - sigma
    denoised = x - sigma * velocity
    score = -(x - (1.0 - sigma) * denoised) / sigma**2
    mean = x + dsigma * velocity - 0.5 * eta**2 * score * dsigma
    std = eta * torch.sqrt(-dsigma)
    return mean, std


def gaussian_log_prob(sample: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(sample; mean, std²) averaged over elements (as DanceGRPO), one value per row."""
    log_density = -((sample - mean) ** 2) / (2 * std**2) - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return log_density.flatten(1).mean(-1)


@dataclass
class SdeRollout:
    states: torch.Tensor  # [T + 1, P·G, ...]
    old_log_probs: torch.Tensor  # [T, P·G]
    sigmas: torch.Tensor
    cond: Conditioning
    groups: int
    group_size: int

    @property
    def latents(self) -> torch.Tensor:
        return self.states[-1]


class SdeGRPO:
    name = "sde_grpo"

    def __init__(self, settings: SdeSettings, group_size: int, shift: float = 1.0, sigmas: torch.Tensor | None = None):
        """`sigmas` (the model's own schedule, `FlowModel.sigmas`) wins over `shift` when given."""
        self.settings = settings
        self.group_size = group_size
        if sigmas is None:
            sigmas = solvers.sigma_schedule(settings.steps, settings.shift if settings.shift is not None else shift)
        self.sigmas = sigmas
        self._plan: list[tuple[int, int]] = []

    inner_steps = 1  # DanceGRPO steps the optimizer once per rollout batch

    @property
    def nfe_old(self) -> float:
        return float(self.settings.steps)

    @property
    def nfe_theta(self) -> float:
        return float(self.settings.trained_steps)

    def _eta(self, sigma: torch.Tensor) -> torch.Tensor:
        return noise_level(self.settings, sigma, float(self.sigmas[1]))

    def _step_log_prob(self, model: FlowModel, x, x_next, j: torch.Tensor, cond: Conditioning, sigmas):
        velocity = model.velocity(x, sigmas[j], cond).float()
        mean, std = sde_step(x, velocity, sigmas[j], sigmas[j + 1], self._eta(sigmas[j]))
        return gaussian_log_prob(x_next.float(), mean.float(), std.float())

    def _integrate(
        self, model: FlowModel, cond: Conditioning, x: torch.Tensor, generator: Generators, autocast: Autocast
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Euler–Maruyama from σ = 1 to 0: every state, and each step's log-probability.

        States and log-probabilities stay float32 (a bf16 model's output is upcast), and the
        model's passes run under the trained passes' `autocast`. `generator`: one for all rows, or
        one per group of consecutive rows (distributed.py)."""
        x = x.to(model.device, torch.float32)
        sigmas = self.sigmas.to(model.device)
        states, log_probs = [x], []
        for j in range(len(sigmas) - 1):
            step = torch.full((x.shape[0],), j, device=model.device)
            with autocast():
                velocity = model.velocity(x, sigmas[step], cond).float()
            mean, std = sde_step(x, velocity, sigmas[step], sigmas[step + 1], self._eta(sigmas[step]))
            if isinstance(generator, torch.Generator):
                noise = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x)
            else:  # each group's step noise from its own stream
                shape = (x.shape[0] // len(generator), *x.shape[1:])
                noise = torch.cat([torch.randn(shape, generator=gen, dtype=torch.float32) for gen in generator]).to(x)
            x_next = mean + std * noise
            log_probs.append(gaussian_log_prob(x_next.float(), mean.float(), std.float()))
            states.append(x_next)
            x = x_next
        return states, log_probs

    @torch.no_grad()
    def sample(
        self,
        model: FlowModel,
        cond: Conditioning,
        noise: torch.Tensor,
        generator: torch.Generator,
        autocast: Autocast = contextlib.nullcontext,
    ) -> torch.Tensor:
        """Latents from the rollout sampler itself (one per row), for evaluating on it."""
        return self._integrate(model, cond, noise, generator, autocast)[0][-1]

    @torch.no_grad()
    def rollout(
        self,
        model: FlowModel,
        cond: Conditioning,
        base_noise: torch.Tensor,
        generator: Generators,
        autocast: Autocast = contextlib.nullcontext,
    ) -> SdeRollout:
        group_cond = cond.repeat_each(self.group_size)
        if not isinstance(generator, torch.Generator):
            per_group(generator, len(cond))  # one per group, checked
        x = base_noise.repeat_interleave(self.group_size, dim=0)
        states, log_probs = self._integrate(model, group_cond, x, generator, autocast)
        return SdeRollout(
            torch.stack(states),
            torch.stack(log_probs),
            self.sigmas,
            group_cond,
            groups=len(cond),
            group_size=self.group_size,
        )

    def advantages(self, combined: torch.Tensor) -> torch.Tensor:
        """Standard GRPO: per-group z-scores, clipped (DanceGRPO clips at ±5)."""
        grouped = group_zscore(combined.view(-1, self.group_size))
        return grouped.clamp(-self.settings.advantage_clip, self.settings.advantage_clip)

    def plan(
        self, rollout: SdeRollout, rng: random.Random, shard: range | None = None, total_groups: int | None = None
    ) -> None:
        """Per sample, its own random `train_fraction` of the steps: DanceGRPO draws a fresh
        permutation of the timesteps for every sample and trains the first fraction of it.

        `shard`: the indices, among the iteration's `total_groups`, of the groups this rollout
        holds (several processes); steps are drawn for every sample of every group, in the same
        order on every rank, and each rank keeps its own (see NeighborGRPO.plan)."""
        count, g = self.settings.trained_steps, self.group_size
        shard = shard if shard is not None else range(rollout.groups)
        total_groups = total_groups if total_groups is not None else shard.stop
        self._plan = []
        for row in range(total_groups * g):
            steps = sorted(rng.sample(range(self.settings.steps), count))
            if row // g in shard:
                self._plan += [(j, row - shard.start * g) for j in steps]

    def accumulate_gradients(
        self, model: FlowModel, rollout: SdeRollout, advantages: torch.Tensor, micro_batch: int, autocast
    ) -> TrainStats:
        stats, total = TrainStats(), len(self._plan)
        flat_advantages = advantages.reshape(-1)
        sigmas = rollout.sigmas.to(model.device)
        for chunk in chunks(self._plan, micro_batch):
            steps = torch.tensor([j for j, _ in chunk], device=model.device)
            rows = torch.tensor([r for _, r in chunk], device=model.device)
            with autocast():
                log_probs = self._step_log_prob(
                    model,
                    rollout.states[steps, rows],
                    rollout.states[steps + 1, rows],
                    steps,
                    rollout.cond.select(rows),
                    sigmas,
                )
            objective, clipped = grpo_clipped_objective(
                log_probs,
                rollout.old_log_probs[steps, rows],
                flat_advantages[rows].to(log_probs),
                self.settings.clip_epsilon,
            )
            loss = -objective.sum() / total
            loss.backward()
            stats.add(loss=loss.item(), clip_fraction=clipped.float().sum().item() / total, passes=len(chunk))
        return stats
