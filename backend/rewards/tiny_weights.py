"""Tiny random-weight reward models written to disk, so tests and benchmarks exercise the exact
loading and scoring paths of the learned rewards without any real (multi-GB) checkpoint.

Scores from these models mean nothing; only shapes, determinism and plumbing do.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .clip_models import _quiet_open_clip

TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def write_open_clip(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """A tiny open_clip config and its random weights → (config .json, weights .safetensors)."""
    import open_clip
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "ngrpo-tiny-clip.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP), encoding="utf-8")
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    with _quiet_open_clip():
        model = open_clip.create_model("ngrpo-tiny-clip", pretrained=None, load_weights=False, pretrained_text=False)
    weights = folder / "tiny-clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return config, weights


def write_open_clip_folder(folder: Path, seed: int = 0) -> Path:
    """The same tiny model laid out as an open_clip hub folder (open_clip_config.json + weights)."""
    config, weights = write_open_clip(folder, seed)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP}), encoding="utf-8")
    weights.rename(folder / "open_clip_model.safetensors")
    config.unlink()
    return folder


def write_aesthetic_head(path: Path, embed_dim: int = TINY_OPEN_CLIP["embed_dim"], seed: int = 0) -> Path:
    """A random head with LAION's MLP layout (layers 0, 2, 4, 6, 7; dropouts between)."""
    from torch import nn

    torch.manual_seed(seed)
    layers = nn.Sequential(
        nn.Linear(embed_dim, 1024),
        nn.Dropout(0.2),
        nn.Linear(1024, 128),
        nn.Dropout(0.2),
        nn.Linear(128, 64),
        nn.Dropout(0.1),
        nn.Linear(64, 16),
        nn.Linear(16, 1),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"layers.{k}": v for k, v in layers.state_dict().items()}, path)
    return path


def write_pickscore_folder(folder: Path, seed: int = 0) -> Path:
    """A tiny transformers CLIPModel folder (config.json + model.safetensors)."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "vocab_size": 49408,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    return folder
