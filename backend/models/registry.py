"""Model names → loaders. Every front end resolves models here, never by importing a family.

A model is named `name` or `name:path`. Each registered name has a loader and a cheap check
(files only, nothing loaded), so front ends can list what is available and refuse a run whose
weights are missing before it is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .base import FlowModel

# The embedded model ships in the repository (weights/tiny/ at the package root).
EMBEDDED_TINY = Path(__file__).resolve().parents[2] / "weights" / "tiny"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    load: Callable[[str | None], FlowModel]
    # Raises FileNotFoundError / ValueError naming what is missing for this path (None = default).
    check: Callable[[str | None], None]


@dataclass(frozen=True)
class ModelInfo:
    """One model a user can pick: `spec` is what a config's `model:` takes."""

    spec: str
    name: str
    description: str
    available: bool
    detail: str  # where its weights are, or what is missing and how to get it


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    loader: Callable[[str | None], FlowModel],
    check: Callable[[str | None], None] | None = None,
    description: str = "",
) -> None:
    _MODELS[name] = ModelEntry(name, description or name, loader, check or (lambda path: None))


def _load_tiny(path: str | None) -> FlowModel:
    from .tiny import TinyFlowModel

    return TinyFlowModel.load(Path(path) if path else None)


def _check_tiny(path: str | None) -> None:
    folder = Path(path).expanduser() if path else EMBEDDED_TINY
    for file in ("model.safetensors", "config.json"):
        if not (folder / file).is_file():
            raise FileNotFoundError(
                f"no tiny model at {folder} ({file} missing); the embedded one ships under weights/tiny/ — "
                "restore it with git, or rebuild it with `ngrpo pretrain-tiny --out weights/tiny`"
            )


register_model("tiny", _load_tiny, _check_tiny, "the embedded 2.4 M-parameter shapes-world model (CPU, seconds)")


def model_names() -> list[str]:
    return sorted(_MODELS)


def _entry(spec: str) -> tuple[ModelEntry, str | None]:
    name, _, path = spec.partition(":")
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(model_names())}")
    return _MODELS[name], path or None


def check_model(spec: str) -> None:
    """Raise (FileNotFoundError or ValueError, naming the fix) unless `spec` could load; loads nothing."""
    entry, path = _entry(spec)
    entry.check(path)


def list_models() -> list[ModelInfo]:
    """Every model a front end can offer, with whether its weights were found."""
    infos = []
    for name in model_names():
        entry = _MODELS[name]
        try:
            entry.check(None)
        except (FileNotFoundError, ValueError) as missing:
            infos.append(ModelInfo(name, name, entry.description, False, str(missing)))
        else:
            infos.append(ModelInfo(name, name, entry.description, True, "found"))
    return infos


def load_model(spec: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> FlowModel:
    """Load `name` or `name:path` (e.g. `tiny`, `tiny:/path/to/folder`) on a device, frozen."""
    entry, path = _entry(spec)
    model = entry.load(path)
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval().requires_grad_(False)
