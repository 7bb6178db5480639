"""The peak-memory estimate: what a 24 GB card can train, and a clear refusal when it cannot."""

from __future__ import annotations

import pytest
import torch
from accelerate import init_empty_weights
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

from neighbor_grpo.backend.models.architectures import shipped_config
from neighbor_grpo.backend.models.memory import GB, estimate, plan_memory, shape_of
from neighbor_grpo.backend.training.config import TrainConfig


def flux_dev_shape():
    with init_empty_weights():
        t5 = T5EncoderModel(T5Config(**shipped_config("text_t5_xxl")))
        clip = CLIPTextModel(CLIPTextConfig(**shipped_config("text_clip_l")))
    encoders = {"t5": sum(p.numel() for p in t5.parameters()), "clip_l": sum(p.numel() for p in clip.parameters())}
    return shape_of("flux", shipped_config("transformer_flux1_dev"), encoders)


def flux_config(**optimizer) -> TrainConfig:
    return TrainConfig.from_dict({
        "model": "tiny", "resolution": 512, "group_size": 12, "prompts_per_iteration": 1,
        "lora": {"rank": 32, "alpha": 32, "quantize_base": optimizer.pop("quantize", "none")},
        "optimizer": {"mixed_precision": "bf16", "micro_batch": 2, **optimizer},
    })  # fmt: skip


def test_flux_dev_in_bf16_does_not_fit_24_gb_but_the_memory_options_do():
    shape = flux_dev_shape()
    assert 11.8e9 < shape.transformer_params < 12.0e9  # FLUX.1-dev's 11.9 B
    plain = estimate(flux_config(), shape, budget=24 * GB)
    assert not plain.fits and plain.peak > 24 * GB
    assert "optimizer.gradient_checkpointing: true" in plain.suggestions
    assert any(s.startswith("lora.quantize_base") for s in plain.suggestions)
    lean = estimate(flux_config(gradient_checkpointing=True, quantize="int8"), shape, budget=24 * GB)
    assert lean.fits, lean.summary()
    assert lean.peak < plain.peak


def test_a_full_fine_tune_fits_eight_gpus_only_when_fsdp_shards_it():
    shape = flux_dev_shape()  # 11.9 B parameters × 16 bytes = 190 GB of trained state
    config = flux_config(gradient_checkpointing=True)
    config.lora.enabled = False
    whole = estimate(config, shape, budget=80 * GB, processes=8)
    assert (
        not whole.fits
        and "distributed.fsdp: true on several GPUs (each keeps 1/N of those 16 bytes)" in whole.suggestions
    )
    config.distributed.fsdp = True
    sharded = estimate(config, shape, budget=80 * GB, processes=8)
    assert sharded.fits, sharded.summary()
    assert "sharded over 8 GPUs" in sharded.summary()
    assert not estimate(config, shape, budget=80 * GB, processes=1).fits  # one GPU holds it all


def test_queueing_refuses_a_run_that_cannot_fit_and_says_what_to_change(sd3_layouts, tmp_path):
    from neighbor_grpo.backend.actions import ActionError, RunRequest, validate_run

    config = {"model": str(sd3_layouts.diffusion_model), "resolution": 64, "device": "cpu"}
    valid = validate_run(tmp_path, RunRequest(config))
    assert valid.memory is not None and valid.memory.fits  # no budget known on a CPU: an estimate only
    assert "estimated peak GPU memory" in valid.memory.summary()
    with pytest.raises(ActionError, match=r"does not fit; try: optimizer\.mixed_precision: bf16"):
        validate_run(tmp_path, RunRequest(config, gpu_memory_gb=0.01))
    assert plan_memory(TrainConfig.from_dict({"model": "tiny"})) is None  # nothing to plan for the tiny model


def test_int8_base_trains_a_lora_on_cpu(sd3_layouts, mode="int8", kind="Int8"):
    pytest.importorskip("torchao")
    from neighbor_grpo.backend.models.registry import load_model
    from neighbor_grpo.backend.training.config import LoraSettings
    from neighbor_grpo.backend.training.lora import add_lora

    model = load_model(str(sd3_layouts.diffusion_model), dtype=torch.bfloat16, quantize=mode)
    reference = load_model(str(sd3_layouts.diffusion_model), dtype=torch.bfloat16)
    quantized = [n for n, m in model.transformer.named_modules() if kind in type(getattr(m, "weight", None)).__name__]
    assert quantized, "no linear weight was quantized"
    x, sigma = model.initial_noise([0], resolution=32), torch.tensor([0.5])
    cond = model.encode_prompts(["a red circle"])
    with torch.no_grad():
        close = model.velocity(x, sigma, cond)
        exact = reference.velocity(x, sigma, cond)
    assert (close - exact).abs().max() < 0.1 * exact.abs().max()  # quantized weights: close, not equal
    params = add_lora(model, LoraSettings(rank=2, alpha=2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.velocity(x, sigma, cond).float().square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_nf4_base_trains_a_lora_on_cpu():
    """NF4 needs weights in blocks of 64 × 256 values: a transformer of width 128 has some."""
    pytest.importorskip("torchao")
    from diffusers import SD3Transformer2DModel
    from peft import LoraConfig

    from neighbor_grpo.backend.models.loading import quantize_base

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=1, attention_head_dim=64,
        num_attention_heads=2, joint_attention_dim=64, caption_projection_dim=128, pooled_projection_dim=64,
        pos_embed_max_size=8,
    ).to(torch.bfloat16)  # fmt: skip
    inputs = {
        "hidden_states": torch.randn(1, 16, 8, 8, dtype=torch.bfloat16),
        "encoder_hidden_states": torch.randn(1, 5, 64, dtype=torch.bfloat16),
        "pooled_projections": torch.randn(1, 64, dtype=torch.bfloat16), "timestep": torch.tensor([500.0]),
    }  # fmt: skip
    with torch.no_grad():
        exact = transformer(**inputs, return_dict=False)[0]
    quantize_base(transformer, "nf4")
    assert type(transformer.transformer_blocks[0].ff.net[2].weight).__name__ == "NF4Tensor"
    with torch.no_grad():
        close = transformer(**inputs, return_dict=False)[0]
    assert (close - exact).abs().max() < 0.1 * exact.abs().max()
    transformer.add_adapter(LoraConfig(r=2, target_modules=["ff.net.2"]), adapter_name="ngrpo")
    lora = [p for n, p in transformer.named_parameters() if "lora_" in n]
    for param in lora:
        param.data = param.data.float()
        param.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        transformer(**inputs, return_dict=False)[0].float().square().mean().backward()
    assert all(p.grad is not None for p in lora)
