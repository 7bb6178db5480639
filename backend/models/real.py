"""Real model families (SD3/SD3.5, FLUX.1) from local files: resolve the parts, check them, build
the family's FlowModel. A new family is one module like sd3.py plus one line in FAMILIES (and its
detection in architectures.py)."""

from __future__ import annotations

import torch

from . import loading, sources
from .flux import MODELSPEC as FLUX_MODELSPEC
from .flux import FluxFlowModel
from .latent import FrozenParts, LatentFlowModel
from .sd3 import MODELSPEC as SD3_MODELSPEC
from .sd3 import SD3FlowModel

FAMILIES: dict[str, type[LatentFlowModel]] = {"sd3": SD3FlowModel, "flux": FluxFlowModel}


def load_real_model(
    spec: str | dict, device: str | torch.device = "cpu", dtype: torch.dtype | None = None, quantize: str = "none"
) -> LatentFlowModel:
    """The model at `spec` with every part checked first (clear errors, nothing half-loaded)."""
    source = sources.resolve(spec)
    sources.check_parts(source)
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    family = source.family
    transformer = loading.load_transformer(source, dtype)
    loading.quantize_base(transformer, quantize)
    encoders = {
        role: loading.load_text_encoder(source.parts[role], role, family, dtype).eval().requires_grad_(False)
        for role in sources.FAMILY_ENCODERS[family]
    }
    tokenizers = {
        role: loading.clip_tokenizer(role, source.clip_tokenizers.get(role)) for role in encoders if role != "t5"
    }
    tokenizers["t5"] = loading.t5_tokenizer(source.parts.get("t5_tokenizer"))
    vae = loading.load_vae(source.parts["vae"], family, dtype).eval().requires_grad_(False)
    model = FAMILIES[family](transformer, FrozenParts(vae, encoders, tokenizers), source.architecture.label)
    variant = source.architecture.variant
    model.modelspec_architecture = {**SD3_MODELSPEC, **FLUX_MODELSPEC}.get(variant, model.modelspec_architecture)
    return model.to(device)
