"""Properties that hold for the paper's algorithm and fail for a wrong implementation."""

from __future__ import annotations

import contextlib
import random

import pytest
import torch

from neighbor_grpo.backend.algorithms.common import grpo_clipped_objective
from neighbor_grpo.backend.algorithms.neighbor_grpo import (
    NeighborGRPO,
    group_zscore,
    perturb_noise,
    quasi_norm_advantages,
    surrogate_log_policy,
)
from neighbor_grpo.backend.training.config import NeighborSettings


def test_perturbed_noises_keep_standard_normal_marginals_and_stay_neighbours():
    gen = torch.Generator().manual_seed(0)
    sigma_p = 0.3
    base = torch.randn(4000, generator=gen)
    group = perturb_noise(base, group_size=6, sigma_p=sigma_p, generator=gen)
    assert group.shape == (6, 4000)
    assert group.mean().abs() < 0.03
    assert (group.var() - 1.0).abs() < 0.05
    # Each pair of candidates shares the base noise: correlation 1 − σp².
    corr = torch.corrcoef(group)[0, 1]
    assert corr == pytest.approx(1 - sigma_p**2, abs=0.03)


def test_quasi_norm_is_scale_invariant_zero_sum_and_bounded():
    gen = torch.Generator().manual_seed(1)
    rewards = torch.randn(5, 12, generator=gen)
    z = group_zscore(rewards)
    for p in (0.5, 0.8, 2.0):
        a = quasi_norm_advantages(z, p, rescale_sqrt_g=False)
        assert torch.allclose(a, quasi_norm_advantages(z * 7.3, p, rescale_sqrt_g=False), atol=1e-6)
        assert torch.allclose(a.sum(-1), torch.zeros(5), atol=1e-5)
        assert a.abs().max() <= 1.0 + 1e-6


def test_quasi_norm_at_p2_with_sqrt_g_is_standard_grpo():
    rewards = torch.randn(3, 12, generator=torch.Generator().manual_seed(2))
    z = group_zscore(rewards)
    assert torch.allclose(quasi_norm_advantages(z, 2.0), z, atol=1e-5)


def test_quasi_norm_below_two_weights_a_one_outlier_group_above_an_evenly_split_one():
    """Eq. 11 sees the shape of the advantage vector: at p = 0.8 a group with one outlier gets more
    total weight than an evenly split group; at p = 2 (standard GRPO) it gets less."""
    outlier = group_zscore(torch.tensor([[1.0] + [0.0] * 11]))
    even = group_zscore(torch.tensor([[1.0] * 6 + [0.0] * 6]))

    def mass(a, p):
        return quasi_norm_advantages(a, p).abs().sum().item()

    assert mass(outlier, 0.8) > mass(even, 0.8)
    assert mass(outlier, 2.0) < mass(even, 2.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_at_ratio_one_is_the_contrastive_force(reduction):
    """At ρ = 1: ∇J = −(1/(τG))·Σ_i A_i ∇d_i (PAPER.md §4)."""
    gen = torch.Generator().manual_seed(3)
    group, tau = 8, 0.7
    anchor = torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    candidates = torch.randn(1, group, 3, 4, 4, generator=gen, dtype=torch.float64) * 0.1 + anchor.detach()[:, None]
    advantages = group_zscore(torch.randn(1, group, generator=gen, dtype=torch.float64))
    log_probs = surrogate_log_policy(anchor, candidates, tau, reduction)
    objective, _ = grpo_clipped_objective(log_probs, log_probs.detach(), advantages, 1e-4)
    (grad,) = torch.autograd.grad(objective.sum(), anchor)

    numel = anchor[0].numel() if reduction == "mean" else 1
    grad_d = -2.0 * (candidates[0] - anchor.detach()[0]) / numel  # ∇_anchor d_i
    expected = -(advantages[0].view(-1, 1, 1, 1) * grad_d).sum(0, keepdim=True) / (tau * group)
    assert torch.allclose(grad, expected, atol=1e-10)


def test_clipping_stops_the_gradient_outside_the_trust_region():
    log_probs = torch.zeros(1, 4, requires_grad=True)
    old = torch.full((1, 4), -0.5)  # ρ = e^0.5, far above 1 + ε
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    objective, clipped = grpo_clipped_objective(log_probs, old, advantages, 1e-4)
    objective.sum().backward()
    # Positive advantages are clipped (no gradient); negative ones keep the unclipped ρ·A.
    assert torch.equal(log_probs.grad[0, :2], torch.zeros(2))
    assert (log_probs.grad[0, 2:] != 0).all()
    assert clipped[0, :2].all()


@pytest.mark.parametrize(("anchors", "trained_steps"), [(1, 1), (2, 3), (4, 4)])
def test_exactly_b_times_k_trained_passes_per_group(toy_model, anchors, trained_steps):
    groups, group_size = 3, 6
    settings = NeighborSettings(sigma_p=0.5, solver="euler", steps=5, anchors=anchors, trained_steps=trained_steps)
    algorithm = NeighborGRPO(settings, group_size, shift=1.0)
    cond = toy_model.encode_prompts(["a", "bb", "ccc"])
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(toy_model.noise_shape(groups), generator=gen)
    rollout = algorithm.rollout(toy_model, cond, base, gen)
    assert rollout.trajectory.shape[:2] == (settings.steps + 1, groups * group_size)
    toy_model.transformer.calls.clear()
    toy_model.requires_grad_(True)
    advantages = algorithm.advantages(torch.randn(groups * group_size, generator=gen))
    algorithm.plan(rollout, random.Random(0))
    stats = algorithm.accumulate_gradients(
        toy_model, rollout, advantages, micro_batch=5, autocast=contextlib.nullcontext
    )
    trained = sum(n for n, with_grad in toy_model.transformer.calls if with_grad)
    assert trained == groups * anchors * trained_steps
    assert stats.values["passes"] == groups * anchors * trained_steps
    assert algorithm.nfe_theta == pytest.approx(anchors / group_size * trained_steps)
    assert toy_model.transformer.to_q.weight.grad is not None


def test_rollouts_are_deterministic_given_the_seed(toy_model):
    settings = NeighborSettings(solver="dpmpp2m", steps=4)
    algorithm = NeighborGRPO(settings, 4, shift=1.0)
    cond = toy_model.encode_prompts(["x", "yy"])

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        base = torch.randn(toy_model.noise_shape(2), generator=gen)
        return algorithm.rollout(toy_model, cond, base, gen).latents

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


def _drifted_lora_model(model_dir):
    """The tiny model with a LoRA whose B is random: its velocity has drifted from the base."""
    from neighbor_grpo.backend.models.registry import load_model
    from neighbor_grpo.backend.training.config import LoraSettings
    from neighbor_grpo.backend.training.lora import add_lora

    torch.manual_seed(0)
    model = load_model(f"tiny:{model_dir}").eval()
    params = add_lora(model, LoraSettings(rank=4, alpha=4))
    with torch.no_grad():
        for name, param in model.transformer.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05)
    return model, params


def _pull_step(model, params, kl_beta: float, steps: int = 1) -> list[float]:
    """Train on a rollout whose advantages are all zero: only the velocity pull can move the LoRA."""
    settings = NeighborSettings(solver="euler", steps=4, anchors=3, trained_steps=2, kl_beta=kl_beta)
    algorithm = NeighborGRPO(settings, group_size=4, shift=1.0)
    cond = model.encode_prompts(["a red circle on a blue background, top left"] * 2)
    gen = torch.Generator().manual_seed(0)
    rollout = algorithm.rollout(model, cond, torch.randn(model.noise_shape(2), generator=gen), gen)
    optimizer = torch.optim.Adam(params, lr=0.01)
    pulls = []
    for _ in range(steps):
        algorithm.plan(rollout, random.Random(0))
        optimizer.zero_grad()
        stats = algorithm.accumulate_gradients(model, rollout, torch.zeros(2, 4), 64, contextlib.nullcontext)
        pulls.append(stats.values.get("velocity_kl", 0.0))
        optimizer.step()
    return pulls


def test_velocity_pull_draws_a_drifted_lora_back_to_the_base_model(model_dir):
    model, params = _drifted_lora_model(model_dir)
    pulls = _pull_step(model, params, kl_beta=1.0, steps=4)
    assert pulls[0] > 0
    assert pulls[-1] < 0.8 * pulls[0]  # each step moves the trained velocity toward the base one


def test_without_velocity_pull_zero_advantages_leave_the_lora_alone(model_dir):
    model, params = _drifted_lora_model(model_dir)
    before = [p.detach().clone() for p in params]
    assert _pull_step(model, params, kl_beta=0.0) == [0.0]
    assert all(torch.equal(a, b) for a, b in zip(before, params, strict=True))


def test_base_model_switches_the_lora_off_and_back_on(model_dir):
    from neighbor_grpo.backend.algorithms.neighbor_grpo import base_model

    model, _ = _drifted_lora_model(model_dir)
    cond = model.encode_prompts(["a green square on a white background, bottom right"])
    x, sigma = torch.randn(model.noise_shape(1), generator=torch.Generator().manual_seed(1)), torch.tensor([0.7])
    with torch.no_grad():
        trained = model.velocity(x, sigma, cond)
        with base_model(model):
            base = model.velocity(x, sigma, cond)
        again = model.velocity(x, sigma, cond)
    assert not torch.allclose(trained, base, atol=1e-4)
    assert torch.equal(trained, again)


def test_velocity_pull_needs_a_lora():
    from neighbor_grpo.backend.training.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match=r"neighbor\.kl_beta needs LoRA training"):
        TrainConfig.from_dict({"lora": {"enabled": False}, "neighbor": {"kl_beta": 0.1}})
