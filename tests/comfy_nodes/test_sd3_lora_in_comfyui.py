"""A LoRA this project trains on an SD3 transformer loads in a real ComfyUI's stock LoRA loader.

A tiny random SD3 transformer that ComfyUI detects (head dim 64, depth = heads, as in SD3) is
trained for two Neighbor GRPO iterations by our trainer, exported by it, and applied with
UNETLoader → LoraLoaderModelOnly → KSampler beside the same KSampler without it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import SD3Transformer2DModel
from safetensors.torch import load_file, save_file

from neighbor_grpo.backend.models.base import SD3_LORA_TARGETS, Conditioning, FlowModel, SamplingDefaults
from neighbor_grpo.backend.models.registry import register_model
from neighbor_grpo.backend.training.config import TrainConfig
from neighbor_grpo.backend.training.reporting import JsonlReporter
from neighbor_grpo.backend.training.trainer import Trainer

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
MODEL_NAME = "comfytest-sd3"


def comfy_detectable_sd3() -> SD3Transformer2DModel:
    torch.manual_seed(0)
    return SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=64,
        num_attention_heads=2, joint_attention_dim=4096, caption_projection_dim=128, pooled_projection_dim=2048,
        pos_embed_max_size=8,
    )  # fmt: skip


class ZeroTextSD3(FlowModel):
    """The SD3 transformer with the all-zero conditioning the ComfyUI graph feeds it (there are no
    text encoders in this test), so the trained LoRA acts on the same inputs there."""

    family = "sd3"
    modelspec_architecture = "stable-diffusion-3-medium"
    lora_targets = SD3_LORA_TARGETS
    defaults = SamplingDefaults(solver="euler", steps=4, shift=3.0, resolution=64)

    def __init__(self, transformer: SD3Transformer2DModel):
        super().__init__()
        self.transformer = transformer

    def encode_prompts(self, prompts):
        return Conditioning(torch.zeros(len(prompts), 1, 4096), torch.zeros(len(prompts), 2048))

    def velocity(self, x, sigma, cond):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0])
        return self.transformer(
            hidden_states=x, encoder_hidden_states=cond.context, pooled_projections=cond.pooled,
            timestep=sigma * 1000, return_dict=False,
        )[0]  # fmt: skip

    def noise_shape(self, batch, resolution=None):
        side = (resolution or self.defaults.resolution) // 8
        return (batch, 16, side, side)

    def decode(self, latents):
        return ((latents[:, :3] + 1) / 2).clamp(0, 1)


@pytest.fixture(scope="module")
def trained_sd3(comfyui_base, tmp_path_factory):
    """The transformer in ComfyUI's diffusion_models/ and our trained LoRA in a loras/ subfolder."""
    model_file = comfyui_base / "models" / "diffusion_models" / "ngrpo_tiny_sd3.safetensors"
    save_file({k: v.contiguous() for k, v in comfy_detectable_sd3().state_dict().items()}, str(model_file))
    register_model(MODEL_NAME, lambda _path: ZeroTextSD3(comfy_detectable_sd3()))
    config = TrainConfig.from_dict({
        "name": "comfy-lora-check", "model": MODEL_NAME, "prompts": ["anything"], "rewards": ["brightness"],
        "iterations": 2, "prompts_per_iteration": 1, "group_size": 4, "checkpoint_every": 2,
        "neighbor": {"solver": "euler", "steps": 4, "anchors": 2, "trained_steps": 2},
        "lora": {"rank": 4, "alpha": 8}, "optimizer": {"learning_rate": 0.05},
        "eval": {"every": 0, "prompts": ["anything"], "seeds_per_prompt": 1, "gold": ["sharpness"], "gallery_size": 1},
    })  # fmt: skip
    run_dir = tmp_path_factory.mktemp("sd3-run")
    outcome = Trainer(config, run_dir, JsonlReporter(run_dir), device="cpu").run()
    assert outcome.status == "finished"
    exported = run_dir / "checkpoints" / "step-000002" / "lora.safetensors"
    lora_file = comfyui_base / "models" / "loras" / "neighbor-grpo" / "comfy-lora-check-step2.safetensors"
    lora_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(exported, lora_file)
    return model_file, lora_file


def lora_graph(lora_name: str, prefix: str) -> dict:
    graph = json.loads((HERE / "workflows" / "tiny_sd3_lora_check.json").read_text())
    graph["lora"]["inputs"]["lora_name"] = lora_name
    graph["save_base"]["inputs"]["filename_prefix"] = f"{prefix}/base"
    graph["save_lora"]["inputs"]["filename_prefix"] = f"{prefix}/lora"
    return graph


def test_trained_sd3_lora_changes_comfyui_output_without_warnings(comfyui, comfyui_base, trained_sd3, clean_log):
    _, lora_file = trained_sd3
    state = load_file(str(lora_file))
    assert state and all(key.startswith("transformer.transformer_blocks.") for key in state)
    assert any(".attn.add_q_proj.lora_A" in key for key in state)
    assert not any(key.endswith(".alpha") for key in state)

    listed = comfyui.get("/object_info/LoraLoaderModelOnly")["LoraLoaderModelOnly"]["input"]["required"]
    lora_name = "neighbor-grpo/" + lora_file.name
    assert lora_name in listed["lora_name"][0], "the stock loader must list LoRAs in our loras/ subfolder"

    comfyui.run_prompt(lora_graph(lora_name, "lora-check"))
    base = load_file(str(next((comfyui_base / "output" / "lora-check").glob("base*.latent"))))["latent_tensor"]
    with_lora = load_file(str(next((comfyui_base / "output" / "lora-check").glob("lora*.latent"))))["latent_tensor"]
    assert base.shape == with_lora.shape == (1, 16, 8, 8)
    assert torch.isfinite(with_lora).all()
    assert (with_lora - base).abs().max() > 1e-3, "the LoRA did not change ComfyUI's output"
