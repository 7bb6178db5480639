"""Model names → loaders. Every front end resolves models here, never by importing a family.

A `model:` value is `tiny` / `tiny:PATH` (the embedded model), or a real model: a path (a
diffusers folder, one .safetensors file) or a mapping of parts (see sources.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .base import FlowModel

_LOADERS: dict[str, Callable[[str | None], FlowModel]] = {}


def register_model(name: str, loader: Callable[[str | None], FlowModel]) -> None:
    _LOADERS[name] = loader


def _load_tiny(path: str | None) -> FlowModel:
    from .tiny import TinyFlowModel

    return TinyFlowModel.load(Path(path) if path else None)


register_model("tiny", _load_tiny)


def model_names() -> list[str]:
    return sorted(_LOADERS)


def named_loader(spec: str | dict) -> tuple[Callable[[str | None], FlowModel], str | None] | None:
    """The registered loader for `name` / `name:path`, or None when `spec` is a real model's path."""
    if isinstance(spec, dict):
        return None
    name, sep, path = spec.partition(":")
    if name in _LOADERS:
        return _LOADERS[name], path or None
    if not sep and not Path(spec).expanduser().exists() and "/" not in spec and "\\" not in spec:
        raise ValueError(
            f"unknown model {spec!r}: give a registered name ({', '.join(model_names())}), a diffusers "
            "folder, a .safetensors file, or a mapping of parts (docs/models.md)"
        )
    return None


def load_model(
    spec: str | dict,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    quantize: str = "none",
) -> FlowModel:
    """Load a model on a device, frozen. `dtype` is the frozen weights' dtype (None: the
    model's own, bf16 for real models on a GPU); `quantize` quantizes a real model's base."""
    named = named_loader(spec)
    if named is None:
        from .real import load_real_model

        model = load_real_model(spec, device, dtype, quantize)
    else:
        if quantize != "none":
            raise ValueError("lora.quantize_base applies to real models (SD3, FLUX) only")
        loader, path = named
        model = loader(path)
        model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval().requires_grad_(False)
