"""FSDP's parts that need no second process: which modules are sharded as units, the gathered
state in the plain single-process format and back (on a one-process gloo group), and refusing
accelerate's own FSDP. Sharded training itself is tested on two processes in test_distributed.py."""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch
import torch.distributed as dist
from diffusers import SD3Transformer2DModel
from torch import nn

from neighbor_grpo.backend.training.fsdp import (
    blocks_of,
    gather_full_state,
    global_norm,
    load_full_state,
    refuse_accelerate_fsdp,
    shard_transformer,
)


def test_each_transformer_block_is_a_sharding_unit():
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=16,
        pos_embed_max_size=8,
    )  # fmt: skip
    assert blocks_of(transformer) == list(transformer.transformer_blocks)


def test_a_model_without_block_names_is_sharded_by_its_module_lists():
    model = nn.Sequential(nn.Linear(2, 2), nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)]))
    assert blocks_of(model) == list(model[1])


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_accelerate_fsdp_is_refused_with_the_command_that_works(monkeypatch, value):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", value)
    with pytest.raises(ValueError, match=r"accelerate launch --multi_gpu .* distributed.fsdp: true"):
        refuse_accelerate_fsdp()


def test_accelerate_without_fsdp_is_fine(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    refuse_accelerate_fsdp()
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    refuse_accelerate_fsdp()


class Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        for block in self.blocks:
            x = torch.tanh(block(x))
        return self.head(x)


@pytest.fixture
def one_process_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def pair():
    """The same weights twice: plain, and sharded with an optimizer each."""
    torch.manual_seed(0)
    plain = Blocks()
    sharded = copy.deepcopy(plain)
    shard_transformer(sharded, torch.device("cpu"))
    return (plain, torch.optim.AdamW(plain.parameters(), lr=0.1)), (
        sharded,
        torch.optim.AdamW(sharded.parameters(), lr=0.1),
    )


def step(model, optimizer, seed: int) -> float:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(seed))
    optimizer.zero_grad()
    model(x).pow(2).mean().backward()
    norm = global_norm(torch.nn.utils.clip_grad_norm_(list(model.parameters()), 0.05))
    optimizer.step()
    return norm


def assert_same_checkpoint(plain, plain_optimizer, weights, optimizer_state):
    assert weights.keys() == plain.state_dict().keys()
    for name, value in plain.state_dict().items():
        assert torch.allclose(weights[name], value, atol=1e-6), name
    expected = plain_optimizer.state_dict()
    assert optimizer_state["param_groups"] == expected["param_groups"]
    assert optimizer_state["state"].keys() == expected["state"].keys()
    for index, moments in expected["state"].items():
        for name, value in moments.items():
            assert torch.allclose(optimizer_state["state"][index][name], value, atol=1e-7), (index, name)


def test_sharded_state_is_saved_in_the_plain_format_and_resumes_exactly(one_process_group):
    (plain, plain_opt), (sharded, sharded_opt) = pair()
    for seed in (1, 2):
        assert step(plain, plain_opt, seed) == pytest.approx(step(sharded, sharded_opt, seed), rel=1e-5)
    weights, optimizer_state = gather_full_state(sharded, sharded_opt)
    assert_same_checkpoint(plain, plain_opt, weights, optimizer_state)

    (_, _), (resumed, resumed_opt) = pair()  # a fresh sharded model, as a resumed run builds it
    load_full_state(resumed, resumed_opt, weights, optimizer_state)
    step(plain, plain_opt, 3)
    step(resumed, resumed_opt, 3)
    assert_same_checkpoint(plain, plain_opt, *gather_full_state(resumed, resumed_opt))


def test_a_checkpoint_before_the_first_step_makes_up_no_optimizer_step(one_process_group):
    (plain, plain_opt), (sharded, sharded_opt) = pair()
    weights, optimizer_state = gather_full_state(sharded, sharded_opt)
    assert optimizer_state == plain_opt.state_dict() and not sharded_opt.state
    (_, _), (resumed, resumed_opt) = pair()
    load_full_state(resumed, resumed_opt, weights, optimizer_state)
    assert not resumed_opt.state
    step(plain, plain_opt, 1)
    step(resumed, resumed_opt, 1)
    assert_same_checkpoint(plain, plain_opt, *gather_full_state(resumed, resumed_opt))
    assert float(plain_opt.state_dict()["state"][0]["step"]) == 1.0


def test_sharding_keeps_no_whole_parameter_alive(one_process_group):
    """What lets a transformer too large for one GPU reach it block by block: once sharded, the
    whole parameters are gone (the trainer holds no reference to them across sharding either)."""
    model = Blocks()
    whole = [weakref.ref(param) for param in model.parameters()]
    shard_transformer(model, torch.device("cpu"))
    gc.collect()
    assert all(ref() is None for ref in whole)
