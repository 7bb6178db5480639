"""Neighbor GRPO: contrastive ODE policy optimization (He et al., arXiv 2511.16955).

No SDE: all randomness lives in the initial noise. Per prompt, G perturbed copies of one base
noise (Eq. 7) are integrated by a deterministic solver under θ_old; their states are the
candidates. A surrogate "leaping" policy (Eq. 8) takes one Euler step of the current model from an
anchor candidate's state and puts a softmax over negative distances to every candidate's next
state; the clipped GRPO objective on that policy, with quasi-norm reweighted advantages (Eq. 11),
pulls the anchor's step toward high-reward neighbours and away from low-reward ones. Only B
anchors per group and K of the T steps are trained (symmetric anchor sampling, Eq. 9).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from .. import solvers
from ..models.base import Conditioning, FlowModel
from ..sampling import velocity_fn
from ..training.config import NeighborSettings
from .common import Generators, TrainStats, chunks, grpo_clipped_objective, per_group


def perturb_noise(base: torch.Tensor, group_size: int, sigma_p: float, generator: torch.Generator) -> torch.Tensor:
    """Eq. 7: ε_i = √(1 − σp²)·ε* + σp·δ_i, δ_i ~ N(0, I), for one base noise ε* → [G, ...].

    Each ε_i is again N(0, I): the variances (1 − σp²) + σp² add to one.
    """
    delta = torch.randn((group_size, *base.shape), generator=generator, dtype=base.dtype)
    return (1.0 - sigma_p**2) ** 0.5 * base.unsqueeze(0) + sigma_p * delta


def group_zscore(rewards: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """A_i = (r_i − mean r) / (std r + eps) within each group (last dim); population std, so that
    Σ A_i² = G and p = 2 in Eq. 11 (with √G) is the identity on these advantages."""
    centred = rewards - rewards.mean(dim=-1, keepdim=True)
    return centred / (rewards.std(dim=-1, unbiased=False, keepdim=True) + eps)


def quasi_norm_advantages(
    advantages: torch.Tensor, p: float, rescale_sqrt_g: bool = True, eps: float = 1e-8
) -> torch.Tensor:
    """Eq. 11: A'_i = A_i / (Σ_k |A_k|^p)^(1/p) within each group (last dim).

    With p < 1 the quasi-norm is large for evenly spread advantages and small for a single
    outlier, which damps nearly flat groups whose z-scores only amplify noise (reward flattening).
    [ours] Multiplying by √G makes p = 2 coincide with standard GRPO on z-scored advantages.
    """
    norm = advantages.abs().pow(p).sum(dim=-1, keepdim=True).pow(1.0 / p)
    reweighted = advantages / (norm + eps)
    if rescale_sqrt_g:
        reweighted = reweighted * advantages.shape[-1] ** 0.5
    return reweighted


def surrogate_log_policy(
    anchor: torch.Tensor, candidates: torch.Tensor, tau: float, reduction: str = "mean"
) -> torch.Tensor:
    """Eq. 8: log π_θ(i) = log softmax_i(−d_i / τ), d_i = ‖x^(i)_{t_{j+1}} − x_anchor‖².

    anchor [n, ...], candidates [n, G, ...] → [n, G]. [ours] `reduction` 'mean' divides the
    squared distance by the number of elements, keeping τ = 1 meaningful at any resolution.
    """
    diff = (candidates - anchor.unsqueeze(1)).flatten(2)
    distance = diff.pow(2).mean(-1) if reduction == "mean" else diff.pow(2).sum(-1)
    return torch.log_softmax(-distance / tau, dim=-1)


def leaping_anchor(
    x: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
) -> torch.Tensor:
    """Eq. 8's train solver: one Euler step of the current model's `velocity` from the anchor's state."""
    return x + (sigma_next - sigma).view(-1, *([1] * (x.ndim - 1))).to(x.dtype) * velocity


@contextlib.contextmanager
def base_model(model: FlowModel):
    """The model with its trained LoRA switched off (the base the run started from)."""
    model.transformer.disable_adapters()
    try:
        yield model
    finally:
        model.transformer.enable_adapters()


def velocity_pull(velocity: torch.Tensor, base_velocity: torch.Tensor) -> torch.Tensor:
    """[ours] mean‖v_θ − v_base‖² per row: for Gaussian policies of equal variance, the KL to the
    base model that Flow-GRPO penalises is this distance times a factor that depends only on the
    step, so β·it is that penalty for a deterministic sampler (with one β for every step). It holds what no reward looks at (a flat background) at the base,
    against the drift of updates whose direction the rewards do not set (docs/tiny_demo.md)."""
    return (velocity.float() - base_velocity.float()).pow(2).flatten(1).mean(1)


@dataclass
class NeighborRollout:
    trajectory: torch.Tensor  # [T + 1, P·G, ...] states under θ_old
    sigmas: torch.Tensor  # [T + 1]
    cond: Conditioning  # P·G rows (each prompt repeated G times)
    groups: int
    group_size: int

    @property
    def latents(self) -> torch.Tensor:
        return self.trajectory[-1]


class NeighborGRPO:
    name = "neighbor_grpo"

    def __init__(
        self, settings: NeighborSettings, group_size: int, shift: float = 1.0, sigmas: torch.Tensor | None = None
    ):
        """`sigmas` (the model's own schedule, `FlowModel.sigmas`) wins over `shift` when given."""
        self.settings = settings
        self.group_size = group_size
        if sigmas is None:
            sigmas = solvers.sigma_schedule(settings.steps, settings.shift if settings.shift is not None else shift)
        self.sigmas = sigmas
        self._old_log_probs: dict[tuple[int, int, int], torch.Tensor] = {}
        self._plan: list[tuple[int, int, int]] = []

    @property
    def inner_steps(self) -> int:
        return self.settings.inner_steps

    @property
    def nfe_old(self) -> float:
        """Rollout evaluations per sample."""
        return float(solvers.evaluations(self.settings.solver, self.settings.steps))

    @property
    def nfe_theta(self) -> float:
        """Trained forward/backward passes per sample: (B / G)·K (Eq. 9), once per inner
        optimizer step (each one runs every planned pass again)."""
        return self.settings.anchors / self.group_size * self.settings.trained_steps * self.settings.inner_steps

    @torch.no_grad()
    def sample(
        self, model: FlowModel, cond: Conditioning, noise: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Latents from the rollout sampler itself (one per row), for evaluating on it."""
        solution = solvers.solve(
            velocity_fn(model, cond),
            noise.to(model.device, model.dtype),
            self.sigmas.to(model.device),
            self.settings.solver,
        )
        return solution.sample

    @torch.no_grad()
    def rollout(
        self,
        model: FlowModel,
        cond: Conditioning,
        base_noise: torch.Tensor,
        generator: Generators,
        autocast: Callable[[], AbstractContextManager] = contextlib.nullcontext,
    ) -> NeighborRollout:
        """cond and base_noise have one row per prompt; returns P·G deterministic trajectories.

        States stay float32 whatever the model's dtype; the model's passes run under the same
        `autocast` as the trained passes, so θ_old and θ see the same numerics. `generator`: one
        for all groups, or one per group (see training/distributed.py)."""
        noise = torch.cat(
            [
                perturb_noise(b.float().cpu(), self.group_size, self.settings.sigma_p, gen)
                for b, gen in zip(base_noise, per_group(generator, len(base_noise)), strict=True)
            ]
        ).to(model.device)
        group_cond = cond.repeat_each(self.group_size)
        with autocast():
            solution = solvers.solve(
                velocity_fn(model, group_cond),
                noise,
                self.sigmas.to(model.device),
                self.settings.solver,
                return_trajectory=True,
            )
        return NeighborRollout(
            torch.stack(solution.trajectory), self.sigmas, group_cond, groups=len(cond), group_size=self.group_size
        )

    def advantages(self, combined: torch.Tensor) -> torch.Tensor:
        """Combined per-group z-scored rewards [P·G] → Eq. 11 advantages [P, G]."""
        grouped = combined.view(-1, self.group_size)
        return quasi_norm_advantages(grouped, self.settings.quasi_norm_p, self.settings.rescale_sqrt_g)

    def plan(
        self, rollout: NeighborRollout, rng: random.Random, shard: range | None = None, total_groups: int | None = None
    ) -> None:
        """Eq. 9: K random steps and B random anchors per group (without replacement), fixed for
        every inner optimizer step of this rollout batch.

        `shard`: the indices, among the iteration's `total_groups`, of the groups this rollout
        holds (several processes). Anchors are drawn for every group, in the same order on every
        rank (the shared stream stays in step), and each rank keeps its own, so the plan does not
        depend on the number of processes."""
        shard = shard if shard is not None else range(rollout.groups)
        total_groups = total_groups if total_groups is not None else shard.stop
        steps = sorted(rng.sample(range(self.settings.steps), self.settings.trained_steps))
        self._plan = []
        for j in steps:
            for group in range(total_groups):
                anchors = sorted(rng.sample(range(self.group_size), self.settings.anchors))
                if group in shard:
                    self._plan += [(j, group - shard.start, anchor) for anchor in anchors]
        self._old_log_probs = {}

    def accumulate_gradients(
        self, model: FlowModel, rollout: NeighborRollout, advantages: torch.Tensor, micro_batch: int, autocast
    ) -> TrainStats:
        """Forward and backward every planned (step, group, anchor) once; the caller steps the
        optimizer. The loss is −J averaged over all planned anchors."""
        s, stats = self.settings, TrainStats()
        sigmas = rollout.sigmas.to(model.device)
        total = len(self._plan)
        for chunk in chunks(self._plan, micro_batch):
            steps = torch.tensor([j for j, _, _ in chunk], device=model.device)
            groups = torch.tensor([g for _, g, _ in chunk], device=model.device)
            rows = groups * self.group_size + torch.tensor([a for _, _, a in chunk], device=model.device)
            x = rollout.trajectory[steps, rows]
            # candidates[n, i] = x^(i)_{t_{j+1}} of the anchor's own group
            members = groups[:, None] * self.group_size + torch.arange(self.group_size, device=model.device)
            candidates = rollout.trajectory[(steps + 1)[:, None], members]
            cond = rollout.cond.select(rows)
            with autocast():
                velocity = model.velocity(x, sigmas[steps], cond)
            anchor = leaping_anchor(x, velocity, sigmas[steps], sigmas[steps + 1])
            log_probs = surrogate_log_policy(anchor.float(), candidates.float(), s.tau, s.distance)
            old = torch.stack(
                [self._old_log_probs.setdefault(key, lp.detach()) for key, lp in zip(chunk, log_probs, strict=True)]
            )
            objective, clipped = grpo_clipped_objective(
                log_probs, old, advantages[groups].to(log_probs), s.clip_epsilon
            )
            loss = -objective.sum() / total
            if s.kl_beta > 0:
                with torch.no_grad(), base_model(model), autocast():
                    base_velocity = model.velocity(x, sigmas[steps], cond)
                pull = velocity_pull(velocity, base_velocity)
                loss = loss + s.kl_beta * pull.sum() / total
                stats.add(velocity_kl=pull.sum().item() / total)
            loss.backward()
            stats.add(
                loss=loss.item(),
                clip_fraction=clipped.float().mean().item() * len(chunk) / total,
                policy_entropy=-(log_probs.exp() * log_probs).sum(-1).mean().item() * len(chunk) / total,
                passes=len(chunk),
            )
        return stats
