"""LoRA through peft on a model's transformer, and the one exported format every loader reads.

The export is the format that ComfyUI's stock LoraLoader (SD3 and FLUX) and diffusers'
`load_lora_weights` / `load_lora_adapter` both read identically: keys
`transformer.<diffusers module>.lora_A/B.weight`, no `.alpha` tensors (diffusers rejects them for
SD3, and ComfyUI then scales by 1.0), the α/r scale folded into lora_B, saved in fp16/bf16.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file

from ..models.base import FlowModel
from .config import LoraSettings
from .lora_files import check_lora_file

# "train" collides with nn.Module.train; "default" with diffusers' own adapters.
ADAPTER = "ngrpo"
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def add_lora(model: FlowModel, settings: LoraSettings) -> list[torch.nn.Parameter]:
    """Attach a trainable LoRA to `model.transformer` (all else frozen); returns its parameters."""
    targets = settings.targets or list(model.lora_targets)
    config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, target_modules=targets, init_lora_weights="gaussian"
    )
    model.requires_grad_(False)
    model.transformer.add_adapter(config, adapter_name=ADAPTER)
    model.transformer.set_adapter(ADAPTER)
    params = [p for name, p in model.transformer.named_parameters() if f".{ADAPTER}." in name]
    if not params:
        raise ValueError(f"LoRA targets {targets} match no module of the {model.family} transformer")
    for param in params:
        param.data = param.data.float()
        param.requires_grad_(True)
    return params


def lora_state(model: FlowModel) -> dict[str, torch.Tensor]:
    """The adapter's weights, keyed as peft keys them (no adapter name)."""
    return {
        k: v.detach().clone() for k, v in get_peft_model_state_dict(model.transformer, adapter_name=ADAPTER).items()
    }


def load_lora_state(model: FlowModel, state: dict[str, torch.Tensor]) -> None:
    result = set_peft_model_state_dict(model.transformer, state, adapter_name=ADAPTER)
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"checkpoint LoRA has keys this model lacks: {result.unexpected_keys[:5]}")


def export_lora(model: FlowModel, settings: LoraSettings, path: Path, run_info: dict) -> Path:
    """Write the LoRA as one safetensors file in the shared ComfyUI/diffusers format."""
    scale = settings.alpha / settings.rank
    dtype = _DTYPES[settings.export_dtype]
    tensors = {}
    for key, value in lora_state(model).items():
        if ".lora_B." in key:
            value = value * scale
        tensors[f"transformer.{key}"] = value.to(dtype).contiguous().cpu()
    metadata = {
        "format": "pt",
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": f"{model.modelspec_architecture}/lora",
        "modelspec.implementation": "diffusers",
        "modelspec.title": str(run_info.get("name", "neighbor-grpo LoRA")),
        "modelspec.date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "modelspec.resolution": f"{run_info.get('resolution', model.defaults.resolution)}"
        f"x{run_info.get('resolution', model.defaults.resolution)}",
        # α/r is folded into the weights, so the file's own scale is 1: dim = alpha.
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(settings.rank),
        "ss_network_alpha": str(settings.rank),
        "ss_base_model_version": model.family,
        "ss_steps": str(run_info.get("step", 0)),
        "ss_seed": str(run_info.get("seed", 0)),
        "ngrpo.run": json.dumps(run_info, sort_keys=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    save_file(tensors, str(temporary), metadata=metadata)
    temporary.replace(path)
    return path


def read_lora_file(path: Path | str, model: FlowModel) -> dict[str, torch.Tensor]:
    """The tensors of a LoRA file, checked to fit `model` whole (see lora_files.check_lora_file)."""
    return check_lora_file(model, path)


def apply_lora_file(model: FlowModel, path: Path | str, strength: float = 1.0, name: str = "loaded") -> None:
    """Load an exported LoRA into a model through diffusers' own loader, at `strength`; the file
    is checked first, so it is applied whole or not at all."""
    state = read_lora_file(path, model)
    model.transformer.load_lora_adapter(state, prefix="transformer", adapter_name=name)
    model.transformer.set_adapters([name], weights=[strength])
