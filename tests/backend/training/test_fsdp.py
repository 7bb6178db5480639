"""FSDP's parts that need no second process: which modules are sharded as units, and refusing
accelerate's own FSDP. Sharded training itself is tested on two processes in test_distributed.py."""

from __future__ import annotations

import pytest
from diffusers import SD3Transformer2DModel
from torch import nn

from neighbor_grpo.backend.training.fsdp import blocks_of, refuse_accelerate_fsdp


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
