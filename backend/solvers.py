"""Deterministic ODE solvers for rectified flow, and σ schedules.

All solvers integrate dx/dσ = v(x, σ) from σ = 1 (noise) to σ = 0 (data) over a decreasing
schedule σ_0 = 1 > σ_1 > … > σ_T = 0, batched, optionally returning every state x_{σ_0..σ_T}
(the Neighbor GRPO trainer stores those as its candidates).

- Euler (flow DDIM): x' = x + (σ' − σ)·v. First order, one evaluation per step.
- Heun: Euler predictor, trapezoidal corrector. Second order, two evaluations per step (one on
  the final step to σ = 0, where the model's x̂0 is taken as is).
- DPM-Solver++(2M) in data prediction, adapted to rectified flow: α = 1 − σ, λ = log(α/σ),
  x̂0 = x − σ·v. The first step leaves σ = 1 where λ = −∞, so it and the step after it are first
  order; the last step to σ = 0 returns x̂0. Second order, one evaluation per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SOLVERS = ("euler", "heun", "dpmpp2m")


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's time shift: σ' = s·σ / (1 + (s − 1)·σ); s > 1 spends more steps at high noise."""
    return shift * sigmas / (1.0 + (shift - 1.0) * sigmas)


def flux_shift(sigmas: torch.Tensor, mu: float) -> torch.Tensor:
    """FLUX's resolution-dependent shift: σ' = e^μ / (e^μ + 1/σ − 1)."""
    out = torch.zeros_like(sigmas)
    positive = sigmas > 0
    out[positive] = math.exp(mu) / (math.exp(mu) + (1.0 / sigmas[positive] - 1.0))
    return out


def flux_mu(
    image_tokens: int, base_tokens: int = 256, max_tokens: int = 4096, base_shift: float = 0.5, max_shift: float = 1.15
) -> float:
    """μ grows linearly with the number of image tokens, as in FLUX.1."""
    slope = (max_shift - base_shift) / (max_tokens - base_tokens)
    return base_shift + slope * (image_tokens - base_tokens)


def sigma_schedule(steps: int, shift: float = 1.0, mu: float | None = None) -> torch.Tensor:
    """`steps + 1` σ values from 1 to 0, uniform then shifted (SD3 shift, or FLUX μ if given)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if shift <= 0:
        raise ValueError(f"shift must be positive, got {shift}")
    sigmas = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    sigmas = flux_shift(sigmas, mu) if mu is not None else shift_sigmas(sigmas, shift)
    return sigmas.float()


def evaluations(solver: str, steps: int) -> int:
    """Model evaluations (NFE) a solver spends on `steps` steps."""
    check_solver(solver)
    return 2 * steps - 1 if solver == "heun" else steps


def check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")


@dataclass
class Solution:
    """The final sample and, when asked for, every state along the way ([T + 1] × x.shape)."""

    sample: torch.Tensor
    trajectory: list[torch.Tensor] | None = None


def _sigma_like(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.to(device=x.device, dtype=x.dtype).expand(x.shape[0])


@torch.no_grad()
def solve(
    velocity: VelocityFn,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    solver: str = "dpmpp2m",
    return_trajectory: bool = False,
    callback: Callable[[int], None] | None = None,
) -> Solution:
    """Integrate from `noise` at σ_0 = sigmas[0] down the schedule with the named solver."""
    check_solver(solver)
    if sigmas.ndim != 1 or len(sigmas) < 2 or not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise ValueError("sigmas must be a strictly decreasing 1-D schedule with at least 2 values")
    step_fn = {"euler": _euler_step, "heun": _heun_step, "dpmpp2m": _DpmSolver2M()}[solver]
    x = noise
    trajectory = [x] if return_trajectory else None
    for index in range(len(sigmas) - 1):
        x = step_fn(velocity, x, sigmas[index], sigmas[index + 1])
        if trajectory is not None:
            trajectory.append(x)
        if callback is not None:
            callback(index)
    return Solution(sample=x, trajectory=trajectory)


def _euler_step(velocity: VelocityFn, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    return x + (sigma_next - sigma).to(x.dtype) * velocity(x, _sigma_like(sigma, x))


def _heun_step(velocity: VelocityFn, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    dt = (sigma_next - sigma).to(x.dtype)
    v = velocity(x, _sigma_like(sigma, x))
    predicted = x + dt * v
    if float(sigma_next) == 0.0:
        return predicted
    v_next = velocity(predicted, _sigma_like(sigma_next, x))
    return x + dt * 0.5 * (v + v_next)


class _DpmSolver2M:
    """Multistep state lives here: the previous x̂0 and log-SNR step."""

    def __init__(self) -> None:
        self.previous_denoised: torch.Tensor | None = None
        self.previous_h: float | None = None

    def __call__(
        self, velocity: VelocityFn, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
    ) -> torch.Tensor:
        s, s_next = float(sigma), float(sigma_next)
        denoised = x - s * velocity(x, _sigma_like(sigma, x))
        if s_next == 0.0:
            return denoised
        alpha, alpha_next = 1.0 - s, 1.0 - s_next
        h = None if alpha == 0.0 else math.log(alpha_next / s_next) - math.log(alpha / s)
        target = denoised
        if h is not None and self.previous_h is not None and self.previous_denoised is not None:
            r = self.previous_h / h
            target = (1.0 + 1.0 / (2.0 * r)) * denoised - (1.0 / (2.0 * r)) * self.previous_denoised
        # First-order data-prediction update, written so that σ = 1 (α = 0, λ = −∞) is finite:
        # x' = (σ'/σ)·x + (α' − α·σ'/σ)·D.
        x_next = (s_next / s) * x + (alpha_next - alpha * s_next / s) * target
        self.previous_denoised = denoised
        self.previous_h = h
        return x_next
