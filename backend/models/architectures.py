"""Which model a weights file holds, read from tensor names and shapes alone (as ComfyUI does),
and the config to build it with — the shipped one (configs/*.json, written from the public
architecture values) when the shapes match a known release, else one inferred from the shapes.
No hub lookup, ever: diffusers would otherwise guess from a few keys and fetch a config."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .weights_files import ModelError, count_indexed

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# Known releases: shipped config file → label shown to users.
TRANSFORMERS = {
    "transformer_sd3_medium": ("sd3", "SD3 medium"),
    "transformer_sd35_medium": ("sd3", "SD3.5 medium"),
    "transformer_sd35_large": ("sd3", "SD3.5 large"),
    "transformer_flux1_dev": ("flux", "FLUX.1 dev"),
    "transformer_flux1_schnell": ("flux", "FLUX.1 schnell"),
}
TEXT_ENCODERS = {"clip_l": "text_clip_l", "clip_g": "text_clip_g", "t5": "text_t5_xxl"}
VAES = {"sd3": "vae_sd3", "flux": "vae_flux"}


@cache
def shipped_config(name: str) -> dict:
    """A shipped config as a dict (without diffusers' `_class_name`)."""
    config = json.loads((CONFIG_DIR / f"{name}.json").read_text())
    config.pop("_class_name", None)
    return config


@dataclass(frozen=True)
class Architecture:
    family: str  # "sd3" | "flux"
    label: str  # "SD3.5 medium", or "SD3 (custom shape)" for shapes of no known release
    config: dict  # constructor arguments of the diffusers transformer class
    layout: str  # "diffusers" | "original" (SAI / BFL key names, converted by diffusers)
    variant: str | None = None  # the shipped config's name when known


def detect_transformer(shapes: dict[str, tuple[int, ...]], where: str) -> Architecture:
    """SD3/SD3.5 MMDiT or FLUX.1 from its weights, in diffusers or original key layout."""
    if "single_transformer_blocks.0.attn.to_q.weight" in shapes or "double_blocks.0.img_attn.qkv.weight" in shapes:
        family, config, layout = "flux", *_flux_config(shapes)
    elif "pos_embed.proj.weight" in shapes or "joint_blocks.0.x_block.attn.qkv.weight" in shapes:
        family, config, layout = "sd3", *_sd3_config(shapes)
    else:
        sample = ", ".join(sorted(shapes)[:4])
        raise ModelError(
            f"{where}: not an SD3/SD3.5 or FLUX.1 diffusion model (its weights start {sample}). "
            "Supported: SD3 medium, SD3.5 medium/large, FLUX.1 dev/schnell, as diffusers folders, "
            "all-in-one checkpoints or ComfyUI diffusion_models files"
        )
    for name, (known_family, label) in TRANSFORMERS.items():
        if known_family == family and _same(shipped_config(name), config):
            return Architecture(family, label, dict(shipped_config(name)), layout, name)
    label = {"sd3": "SD3", "flux": "FLUX.1"}[family] + " (custom shape)"
    return Architecture(family, label, config, layout)


def _same(known: dict, inferred: dict) -> bool:
    return all(json.dumps(known.get(k)) == json.dumps(v) for k, v in inferred.items())


def _sd3_config(s: dict) -> tuple[dict, str]:
    if "pos_embed.proj.weight" in s:
        layout, blocks, patch = "diffusers", "transformer_blocks.", s["pos_embed.proj.weight"]
        pos, pooled = s.get("pos_embed.pos_embed"), s["time_text_embed.text_embedder.linear_1.weight"]
        out, q_norm, second = s["proj_out.weight"], "attn.norm_q.weight", "attn2.to_q.weight"
    else:
        layout, blocks, patch = "original", "joint_blocks.", s["x_embedder.proj.weight"]
        pos, pooled = s.get("pos_embed"), s["y_embedder.mlp.0.weight"]
        out, q_norm, second = s["final_layer.linear.weight"], "x_block.attn.ln_q.weight", "x_block.attn2.qkv.weight"
    width, in_channels, patch_size = patch[0], patch[1], patch[2]
    layers = count_indexed(s, blocks)
    norm = s.get(f"{blocks}0.{q_norm}")
    head_dim = norm[0] if norm else 64  # without q/k norms, heads of 64 as ComfyUI assumes
    max_size = math.isqrt(pos[1]) if pos else 96
    config = {
        "sample_size": 128,
        "patch_size": patch_size,
        "in_channels": in_channels,
        "out_channels": out[0] // (patch_size * patch_size),
        "num_layers": layers,
        "attention_head_dim": head_dim,
        "num_attention_heads": width // head_dim,
        "joint_attention_dim": s["context_embedder.weight"][1],
        "caption_projection_dim": width,
        "pooled_projection_dim": pooled[1],
        "pos_embed_max_size": max_size,
        "dual_attention_layers": [i for i in range(layers) if f"{blocks}{i}.{second}" in s],
        "qk_norm": "rms_norm" if norm else None,
    }
    return config, layout


def _flux_config(s: dict) -> tuple[dict, str]:
    if "x_embedder.weight" in s:
        layout, img, txt = "diffusers", s["x_embedder.weight"], s["context_embedder.weight"]
        pooled, norm = s["time_text_embed.text_embedder.linear_1.weight"], s["transformer_blocks.0.attn.norm_q.weight"]
        double, single = count_indexed(s, "transformer_blocks."), count_indexed(s, "single_transformer_blocks.")
        guidance, out = "time_text_embed.guidance_embedder.linear_1.weight" in s, s["proj_out.weight"]
    else:
        layout, img, txt = "original", s["img_in.weight"], s["txt_in.weight"]
        pooled, norm = s["vector_in.in_layer.weight"], s["double_blocks.0.img_attn.norm.query_norm.scale"]
        double, single = count_indexed(s, "double_blocks."), count_indexed(s, "single_blocks.")
        guidance, out = "guidance_in.in_layer.weight" in s, s["final_layer.linear.weight"]
    head_dim = norm[0]
    if head_dim % 16:
        raise ModelError(f"FLUX transformer with head width {head_dim}: rotary embeddings need a multiple of 16")
    # FLUX.1 splits each head's rotary dimensions 16/56/56 (of 128); other widths keep the ratio.
    axes = [16, 56, 56] if head_dim == 128 else [head_dim // 8, head_dim * 7 // 16, head_dim * 7 // 16]
    config = {
        "patch_size": 1,
        "in_channels": img[1],
        "out_channels": None if out[0] == img[1] else out[0],
        "num_layers": double,
        "num_single_layers": single,
        "attention_head_dim": head_dim,
        "num_attention_heads": img[0] // head_dim,
        "joint_attention_dim": txt[1],
        "pooled_projection_dim": pooled[1],
        "guidance_embeds": guidance,
        "axes_dims_rope": axes,
    }
    return config, layout


def detect_vae(shapes: dict[str, tuple[int, ...]], family: str, where: str) -> dict:
    """An AutoencoderKL config for these weights, with the family's latent scale and shift."""
    if "decoder.conv_in.weight" not in shapes or "encoder.conv_in.weight" not in shapes:
        raise ModelError(f"{where}: not a VAE (no encoder/decoder weights found)")
    if "encoder.down_blocks.0.resnets.0.conv1.weight" in shapes:
        down, resnets = "encoder.down_blocks.", "resnets"
    else:
        down, resnets = "encoder.down.", "block"
    levels = count_indexed(shapes, down)
    config = dict(shipped_config(VAES[family]))
    config.update(
        block_out_channels=[shapes[f"{down}{i}.{resnets}.0.conv2.weight"][0] for i in range(levels)],
        layers_per_block=count_indexed(shapes, f"{down}0.{resnets}."),
        latent_channels=shapes["decoder.conv_in.weight"][1],
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        use_quant_conv="quant_conv.weight" in shapes,
        use_post_quant_conv="post_quant_conv.weight" in shapes,
    )
    if config["latent_channels"] != 16:
        raise ModelError(
            f"{where}: a VAE with {config['latent_channels']} latent channels; SD3 and FLUX need their "
            "16-channel VAE (ComfyUI: ae.safetensors for FLUX, the SD3/SD3.5 VAE for SD3)"
        )
    return config


def detect_text_encoder(shapes: dict[str, tuple[int, ...]], role: str, where: str) -> dict:
    """A transformers config for a CLIP (role clip_l / clip_g) or T5 (role t5) text encoder."""
    config = dict(shipped_config(TEXT_ENCODERS[role]))
    if role == "t5":
        embed = shapes.get("shared.weight") or shapes.get("encoder.embed_tokens.weight")
        attention = "encoder.block.0.layer.0.SelfAttention."
        if embed is None or f"{attention}q.weight" not in shapes:
            raise ModelError(f"{where}: not a T5 encoder (expected t5xxl weights: shared / encoder.block.*)")
        heads = shapes[f"{attention}relative_attention_bias.weight"][1]
        config.update(
            vocab_size=embed[0],
            d_model=embed[1],
            num_heads=heads,
            d_kv=shapes[f"{attention}q.weight"][0] // heads,
            d_ff=shapes["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"][0],
            num_layers=count_indexed(shapes, "encoder.block."),
        )
        return config
    # ComfyUI's files (and transformers 4) key CLIP under text_model.; transformers 5 does not.
    shapes = {k.removeprefix("text_model."): v for k, v in shapes.items()}
    embed = shapes.get("embeddings.token_embedding.weight")
    if embed is None:
        raise ModelError(f"{where}: not a CLIP text encoder (expected text_model.* weights for {role})")
    hidden = embed[1]
    if hidden != config["hidden_size"]:  # a custom size: heads of 64 as both CLIP-L and CLIP-G use
        config["num_attention_heads"] = max(1, hidden // 64)
    config.update(
        vocab_size=embed[0],
        hidden_size=hidden,
        max_position_embeddings=shapes["embeddings.position_embedding.weight"][0],
        intermediate_size=shapes["encoder.layers.0.mlp.fc1.weight"][0],
        num_hidden_layers=count_indexed(shapes, "encoder.layers."),
        projection_dim=shapes.get("text_projection.weight", (hidden,))[0],
    )
    return config
