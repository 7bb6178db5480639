"""The exported LoRA format loads through diffusers for SD3 and FLUX transformers too, with the
default targets of each family, and reproduces the trained adapter's outputs."""

from __future__ import annotations

import pytest
import torch
from diffusers import FluxTransformer2DModel, SD3Transformer2DModel
from safetensors.torch import load_file
from torch import nn

from neighbor_grpo.backend.models.base import FLUX_LORA_TARGETS, SD3_LORA_TARGETS, SamplingDefaults
from neighbor_grpo.backend.training.config import LoraSettings
from neighbor_grpo.backend.training.lora import add_lora, export_lora


def tiny_sd3() -> SD3Transformer2DModel:
    torch.manual_seed(0)
    return SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8,
        pos_embed_max_size=8,
    )  # fmt: skip


def tiny_flux() -> FluxTransformer2DModel:
    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=16, pooled_projection_dim=8, axes_dims_rope=(4, 6, 6),
    )  # fmt: skip


def sd3_forward(model):
    g = torch.Generator().manual_seed(1)
    return model(
        hidden_states=torch.randn(2, 4, 8, 8, generator=g), encoder_hidden_states=torch.randn(2, 5, 16, generator=g),
        pooled_projections=torch.randn(2, 8, generator=g), timestep=torch.tensor([500.0, 100.0]), return_dict=False,
    )[0]  # fmt: skip


def flux_forward(model):
    g = torch.Generator().manual_seed(1)
    return model(
        hidden_states=torch.randn(2, 16, 4, generator=g), encoder_hidden_states=torch.randn(2, 5, 16, generator=g),
        pooled_projections=torch.randn(2, 8, generator=g), timestep=torch.tensor([0.5, 0.1]),
        img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(5, 3), return_dict=False,
    )[0]  # fmt: skip


class Holder(nn.Module):
    """Just what LoRA training and export need of a FlowModel."""

    defaults = SamplingDefaults(resolution=16)

    def __init__(self, transformer, family, targets):
        super().__init__()
        self.transformer, self.family, self.lora_targets = transformer, family, targets
        self.modelspec_architecture = {"sd3": "stable-diffusion-3-medium", "flux": "flux-1-dev"}[family]


@pytest.mark.parametrize(
    ("family", "build", "forward", "targets", "must_adapt"),
    [
        ("sd3", tiny_sd3, sd3_forward, SD3_LORA_TARGETS, "transformer_blocks.0.attn.add_q_proj"),
        ("flux", tiny_flux, flux_forward, FLUX_LORA_TARGETS, "single_transformer_blocks.0.proj_mlp"),
    ],
)
def test_exported_lora_reproduces_the_adapter_through_diffusers(family, build, forward, targets, must_adapt, tmp_path):
    settings = LoraSettings(rank=4, alpha=8)
    trained = Holder(build(), family, targets)
    torch.manual_seed(2)
    for param in add_lora(trained, settings):
        param.data.normal_(std=0.05)  # as if trained: lora_B starts at zero
    with torch.no_grad():
        expected = forward(trained.transformer)
    path = export_lora(trained, settings, tmp_path / "lora.safetensors", {"name": family, "step": 1})

    state = load_file(str(path))
    assert any(key.startswith(f"transformer.{must_adapt}.lora_A") for key in state)
    fresh = build()
    modules = dict(fresh.named_modules())
    assert all(key.removeprefix("transformer.").rsplit(".lora_", 1)[0] in modules for key in state)
    with torch.no_grad():
        base = forward(fresh)
    fresh.load_lora_adapter(state, prefix="transformer", adapter_name="exported")
    with torch.no_grad():
        got = forward(fresh)
    assert (expected - base).abs().max() > 1e-2
    assert torch.allclose(got, expected, atol=5e-3, rtol=1e-2)
