"""The SDE baseline's step plan and Flow-GRPO noise schedule."""

from __future__ import annotations

import random

import torch

from neighbor_grpo.backend.algorithms.sde_grpo import SdeGRPO, noise_level
from neighbor_grpo.backend.training.config import SdeSettings


def test_each_sample_trains_its_own_random_fraction_of_the_steps(toy_model):
    settings = SdeSettings(steps=10, train_fraction=0.6)
    algorithm = SdeGRPO(settings, group_size=4, shift=1.0)
    cond = toy_model.encode_prompts(["a", "bb"])
    rollout = algorithm.rollout(toy_model, cond, torch.randn(2, 4, 8, 8), torch.Generator().manual_seed(0))
    algorithm.plan(rollout, random.Random(0))
    per_row: dict[int, list[int]] = {}
    for step, row in algorithm._plan:
        per_row.setdefault(row, []).append(step)
    assert sorted(per_row) == list(range(8))
    assert all(len(steps) == len(set(steps)) == 6 for steps in per_row.values())
    assert len({tuple(steps) for steps in per_row.values()}) > 1  # not one subset for the whole batch
    assert algorithm.nfe_theta == 6
    assert SdeGRPO(SdeSettings(steps=25, train_fraction=0.6), 4, 1.0).nfe_theta == 15


def test_flow_grpo_noise_caps_only_the_denominator():
    settings = SdeSettings(noise_schedule="flow_grpo", flow_grpo_a=0.7)
    sigma = torch.tensor([1.0, 0.9, 0.5])
    eta = noise_level(settings, sigma, sigma_max=0.96)
    expected = 0.7 * torch.sqrt(torch.tensor([1.0 / (1 - 0.96), 0.9 / 0.1, 0.5 / 0.5]))
    assert torch.allclose(eta, expected)


def test_sampling_on_the_rollout_sampler_is_repeatable(toy_model):
    algorithm = SdeGRPO(SdeSettings(steps=6), group_size=2, shift=1.0)
    cond = toy_model.encode_prompts(["a", "bb"])
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    first = algorithm.sample(toy_model, cond, noise, torch.Generator().manual_seed(5))
    again = algorithm.sample(toy_model, cond, noise, torch.Generator().manual_seed(5))
    other = algorithm.sample(toy_model, cond, noise, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)
