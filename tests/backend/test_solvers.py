"""Solvers converge at their order on a flow with a known exact solution, and are deterministic."""

from __future__ import annotations

import math

import pytest
import torch

from neighbor_grpo.backend import solvers

MU, S = 2.0, 0.5  # data ~ N(μ, s²), noise ~ N(0, 1)


def gaussian_velocity(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact rectified-flow velocity between N(0, 1) and N(μ, s²): x(σ) = m(σ) + √V(σ)·ε."""
    sigma = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    mean = (1 - sigma) * MU
    var = (1 - sigma) ** 2 * S**2 + sigma**2
    return -MU + (sigma - (1 - sigma) * S**2) / var * (x - mean)


def error(solver: str, steps: int, noise: torch.Tensor) -> float:
    sigmas = solvers.sigma_schedule(steps).double()
    sample = solvers.solve(gaussian_velocity, noise, sigmas, solver).sample
    return (sample - (MU + S * noise)).abs().max().item()


@pytest.mark.parametrize(("solver", "low", "high"), [("euler", 0.85, 1.15), ("heun", 1.8, 2.3), ("dpmpp2m", 1.6, 2.3)])
def test_error_slope_matches_the_solver_order(solver, low, high):
    noise = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    steps = [32, 64, 128, 256]
    logs = [(math.log(n), math.log(error(solver, n, noise))) for n in steps]
    mean_x = sum(x for x, _ in logs) / len(logs)
    mean_y = sum(y for _, y in logs) / len(logs)
    slope = -sum((x - mean_x) * (y - mean_y) for x, y in logs) / sum((x - mean_x) ** 2 for x, _ in logs)
    assert low <= slope <= high, f"{solver}: error slope {slope:.2f}"


def test_second_order_solvers_beat_euler_at_equal_evaluations():
    noise = torch.randn(64, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert error("dpmpp2m", 16, noise) < error("euler", 16, noise) / 3
    assert error("heun", 8, noise) < error("euler", 15, noise) / 3


@pytest.mark.parametrize("solver", solvers.SOLVERS)
def test_same_inputs_same_outputs_and_batch_items_match_single_runs(solver):
    noise = torch.randn(5, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    sigmas = solvers.sigma_schedule(6, shift=3.0)
    first = solvers.solve(gaussian_velocity, noise, sigmas, solver, return_trajectory=True)
    second = solvers.solve(gaussian_velocity, noise, sigmas, solver)
    assert torch.equal(first.sample, second.sample)
    assert len(first.trajectory) == 7 and torch.equal(first.trajectory[-1], first.sample)
    single = torch.cat([solvers.solve(gaussian_velocity, noise[i : i + 1], sigmas, solver).sample for i in range(5)])
    assert torch.allclose(single, first.sample, atol=1e-6)


def test_schedules_run_from_one_to_zero_and_shift_spends_steps_at_high_noise():
    plain = solvers.sigma_schedule(10)
    shifted = solvers.sigma_schedule(10, shift=3.0)
    flux = solvers.sigma_schedule(10, mu=solvers.flux_mu(4096))
    for sigmas in (plain, shifted, flux):
        assert sigmas[0] == 1.0 and sigmas[-1] == 0.0
        assert (sigmas[1:] < sigmas[:-1]).all()
    assert (shifted[1:-1] > plain[1:-1]).all()
    assert solvers.evaluations("heun", 8) == 15 and solvers.evaluations("dpmpp2m", 8) == 8


def test_bad_solver_and_steps_name_the_problem():
    with pytest.raises(ValueError, match=r"unknown solver .rk4.*euler, heun, dpmpp2m"):
        solvers.solve(gaussian_velocity, torch.zeros(1, 1), solvers.sigma_schedule(2), "rk4")
    with pytest.raises(ValueError, match="steps must be at least 1"):
        solvers.sigma_schedule(0)
