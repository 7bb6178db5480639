"""Model names → loaders. Every front end resolves models here, never by importing a family.

A `model:` value is a registered name or `name:path` (`tiny`, `tiny:/folder`), or a real model
(SD3/SD3.5, FLUX.1): a diffusers folder, one .safetensors file, or a mapping of parts
(sources.py). Each registered name has a loader and a cheap check (files only, nothing loaded),
so front ends list what is available and refuse a run whose weights are missing before queueing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .base import FlowModel

# The embedded model ships in the repository (weights/tiny/ at the package root).
EMBEDDED_TINY = Path(__file__).resolve().parents[2] / "weights" / "tiny"
ModelSpec = str | dict


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
    family: str = "tiny"
    parts: dict[str, str] = field(default_factory=dict)  # role → file or folder found
    missing: list[str] = field(default_factory=list)  # roles not found (clip_g, t5_tokenizer ...)


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


def _entry(spec: ModelSpec) -> tuple[ModelEntry, str | None] | None:
    """The registered entry for `name` / `name:path`, or None when `spec` names a real model."""
    if isinstance(spec, dict):
        return None
    name, sep, path = spec.partition(":")
    if name in _MODELS:
        return _MODELS[name], path or None
    if not sep and "/" not in spec and "\\" not in spec and not Path(spec).expanduser().exists():
        raise ValueError(
            f"unknown model {spec!r}; available: {', '.join(model_names())}, or a real model (SD3, FLUX) as a "
            "diffusers folder, a .safetensors file, or a mapping of parts (docs/models.md)"
        )
    return None


def is_registered(spec: ModelSpec) -> bool:
    return _entry(spec) is not None


def check_model(spec: ModelSpec) -> None:
    """Raise (FileNotFoundError or ValueError, naming the fix) unless `spec` could load; loads nothing."""
    entry = _entry(spec)
    if entry is not None:
        entry[0].check(entry[1])
        return
    from . import sources

    sources.check_parts(sources.resolve(spec))


def list_models() -> list[ModelInfo]:
    """Every model a front end can offer: registered names, then the SD3/FLUX files found in
    ComfyUI's model folders, each with whether its weights (and text encoders, VAE) were found."""
    infos = []
    for name in model_names():
        entry = _MODELS[name]
        try:
            entry.check(None)
        except (FileNotFoundError, ValueError) as missing:
            infos.append(ModelInfo(name, name, entry.description, False, str(missing)))
        else:
            infos.append(ModelInfo(name, name, entry.description, True, "found"))
    from .catalog import real_models

    return infos + real_models()


def load_model(
    spec: ModelSpec, device: str | torch.device = "cpu", dtype: torch.dtype | None = None, quantize: str = "none"
) -> FlowModel:
    """Load a model on a device, frozen. `dtype` is the frozen weights' dtype (None: the model's
    own; bf16 for real models on a GPU); `quantize` quantizes a real model's frozen base."""
    entry = _entry(spec)
    if entry is None:
        from .real import load_real_model

        model = load_real_model(spec, device, dtype, quantize)
    else:
        if quantize != "none":
            raise ValueError("lora.quantize_base applies to real models (SD3, FLUX) only")
        model = entry[0].load(entry[1])
        model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval().requires_grad_(False)
