"""Tiny random-weight SD3 and FLUX models, complete with text encoders, tokenizers and VAE, saved
once per session in the three layouts users have: a diffusers folder, ComfyUI's separate files,
and an all-in-one checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from safetensors.torch import save_file
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

from neighbor_grpo.backend.models.loading import clip_tokenizer

RESOLUTION = 32  # pixels; the ×2 VAE makes 16×16 latents
T5_DIM = 32
WORDS = [
    "a",
    "red",
    "green",
    "blue",
    "circle",
    "square",
    "triangle",
    "on",
    "the",
    "background",
    "top",
    "left",
    "right",
    "photo",
    "of",
    "cat",
]


def t5_tokenizer() -> T5Tokenizer:
    pieces = ["<pad>", "</s>", "<unk>"] + [chr(c) for c in range(97, 123)] + ["▁" + w for w in WORDS] + ["▁"]
    return T5Tokenizer(vocab=[(p, 0.0 if i < 3 else -float(i)) for i, p in enumerate(pieces)], extra_ids=0)


def clip(hidden: int, projection: bool, seed: int, act: str = "quick_gelu"):
    """CLIP-L uses quick_gelu, CLIP-G gelu (as the released models, whose configs we ship)."""
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=49408, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=1, max_position_embeddings=77, projection_dim=hidden, hidden_act=act,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )  # fmt: skip
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def t5(seed: int) -> T5EncoderModel:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(t5_tokenizer()), d_model=T5_DIM, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
        feed_forward_proj="gated-gelu", is_encoder_decoder=False, dropout_rate=0.0,
    )  # fmt: skip
    return T5EncoderModel(config).eval()


def vae(family: str) -> AutoencoderKL:
    torch.manual_seed(3)
    scale, shift = (1.5305, 0.0609) if family == "sd3" else (0.3611, 0.1159)
    return AutoencoderKL(
        block_out_channels=(32, 32), layers_per_block=1, latent_channels=16, norm_num_groups=32, sample_size=32,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        scaling_factor=scale, shift_factor=shift, use_quant_conv=False, use_post_quant_conv=False,
    ).eval()  # fmt: skip


def sd3_pipeline() -> StableDiffusion3Pipeline:
    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=16, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=T5_DIM, caption_projection_dim=32, pooled_projection_dim=32,
        pos_embed_max_size=16, qk_norm="rms_norm", dual_attention_layers=(0,),
    )  # fmt: skip
    return StableDiffusion3Pipeline(
        transformer=transformer.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae("sd3"),
        text_encoder=clip(16, True, 1),
        tokenizer=clip_tokenizer("clip_l"),
        text_encoder_2=clip(16, True, 2, act="gelu"),
        tokenizer_2=clip_tokenizer("clip_g"),
        text_encoder_3=t5(4),
        tokenizer_3=t5_tokenizer(),
    )


def flux_pipeline() -> FluxPipeline:
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=32,
        num_attention_heads=2, joint_attention_dim=T5_DIM, pooled_projection_dim=16, guidance_embeds=True,
        axes_dims_rope=(4, 14, 14),
    )  # fmt: skip
    return FluxPipeline(
        transformer=transformer.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
        vae=vae("flux"),
        text_encoder=clip(16, False, 1),
        tokenizer=clip_tokenizer("clip_l"),
        text_encoder_2=t5(4),
        tokenizer_2=t5_tokenizer(),
    )


@dataclass
class Layouts:
    family: str
    diffusers: Path  # a diffusers folder (model_index.json)
    comfy_root: Path  # a ComfyUI install: models/{diffusion_models,text_encoders,vae}, T5 tokenizer
    diffusion_model: Path  # models/diffusion_models/<file>: the transformer alone
    all_in_one: Path  # models/checkpoints/<file>: every part under ComfyUI's prefixes


def _state(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def _comfy_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIP files as ComfyUI keeps them: everything but the projection under `text_model.`."""
    if not any("embeddings.token_embedding" in k for k in state):
        return state  # T5
    return {k if k.startswith(("text_model.", "text_projection")) else "text_model." + k: v for k, v in state.items()}


def save_layouts(family: str, folder: Path) -> Layouts:
    pipe = sd3_pipeline() if family == "sd3" else flux_pipeline()
    pipe.save_pretrained(folder / "diffusers")
    root = folder / "ComfyUI"
    models = root / "models"
    for sub in ("diffusion_models", "text_encoders", "vae", "checkpoints"):
        (models / sub).mkdir(parents=True)
    t5_tokenizer().save_pretrained(root / "comfy" / "text_encoders" / "t5_tokenizer")
    encoders = {"clip_l": pipe.text_encoder}
    if family == "sd3":
        encoders.update(clip_g=pipe.text_encoder_2, t5=pipe.text_encoder_3)
    else:
        encoders.update(t5=pipe.text_encoder_2)
    files = {"clip_l": "clip_l.safetensors", "clip_g": "clip_g.safetensors", "t5": "t5xxl_fp16.safetensors"}
    for role, encoder in encoders.items():
        save_file(_comfy_keys(_state(encoder)), str(models / "text_encoders" / files[role]))
    vae_name = "sd3_vae.safetensors" if family == "sd3" else "ae.safetensors"
    save_file(_state(pipe.vae), str(models / "vae" / vae_name))
    diffusion_model = models / "diffusion_models" / f"{family}_tiny.safetensors"
    save_file(_state(pipe.transformer), str(diffusion_model))
    everything = _state(pipe.transformer, "model.diffusion_model.") | _state(pipe.vae, "first_stage_model.")
    prefixes = {"clip_l": "clip_l", "clip_g": "clip_g", "t5": "t5xxl"}
    for role, encoder in encoders.items():
        keys = _comfy_keys(_state(encoder))
        everything |= {f"text_encoders.{prefixes[role]}.transformer.{k}": v for k, v in keys.items()}
    all_in_one = folder / "all_in_one" / f"{family}_tiny_all.safetensors"
    all_in_one.parent.mkdir()
    save_file(everything, str(all_in_one))
    return Layouts(family, folder / "diffusers", root, diffusion_model, all_in_one)


@pytest.fixture(scope="session")
def sd3_layouts(tmp_path_factory) -> Layouts:
    return save_layouts("sd3", tmp_path_factory.mktemp("sd3"))


@pytest.fixture(scope="session")
def flux_layouts(tmp_path_factory) -> Layouts:
    return save_layouts("flux", tmp_path_factory.mktemp("flux"))


@pytest.fixture(params=["sd3", "flux"])
def layouts(request) -> Layouts:
    return request.getfixturevalue(f"{request.param}_layouts")


@pytest.fixture(autouse=True)
def no_user_comfyui(monkeypatch, tmp_path):
    """Discovery must not wander into a developer's real ~/ComfyUI."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    monkeypatch.delenv("COMFYUI_EXTRA_MODEL_PATHS", raising=False)
