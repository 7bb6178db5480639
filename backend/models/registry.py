"""Model names → loaders. Every front end resolves models here, never by importing a family."""

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


def load_model(spec: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> FlowModel:
    """Load `name` or `name:path` (e.g. `tiny`, `tiny:/path/to/folder`) on a device, frozen."""
    name, _, path = spec.partition(":")
    if name not in _LOADERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(model_names())}")
    model = _LOADERS[name](path or None)
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval().requires_grad_(False)
