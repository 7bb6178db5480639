"""Reading model weight files without loading them: safetensors headers, key prefixes, and the
one error type every model-loading problem raises (shown to the user before a run is queued)."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

# Prefixes under which all-in-one checkpoints (SAI's SD3.5 files, ComfyUI's saved checkpoints)
# keep each part.
TRANSFORMER_PREFIX = "model.diffusion_model."
VAE_PREFIXES = ("first_stage_model.", "vae.")
TEXT_ENCODER_PREFIXES = {
    "clip_l": "text_encoders.clip_l.transformer.",
    "clip_g": "text_encoders.clip_g.transformer.",
    "t5": "text_encoders.t5xxl.transformer.",
}


class ModelError(ValueError):
    """A model cannot be loaded as given; the message names the problem and the fix."""


@dataclass(frozen=True)
class WeightsHeader:
    """Names and shapes of a safetensors file's tensors, read from its header only."""

    path: Path
    shapes: dict[str, tuple[int, ...]]

    def part(self, prefix: str) -> dict[str, tuple[int, ...]]:
        """Shapes of the tensors under `prefix`, with the prefix removed."""
        if not prefix:
            return dict(self.shapes)
        return {k[len(prefix) :]: v for k, v in self.shapes.items() if k.startswith(prefix)}

    def has_prefix(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.shapes)

    def parameters(self, prefix: str = "") -> int:
        """How many numbers the tensors under `prefix` hold."""
        return sum(math.prod(shape) for shape in self.part(prefix).values())


def read_header(path: Path | str) -> WeightsHeader:
    """The header of a .safetensors file; anything else is refused with a clear message."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if path.suffix.lower() != ".safetensors":
        raise ModelError(
            f"{path.name} is not a .safetensors file; only safetensors weights are loaded (pickled "
            ".ckpt/.pt/.bin files can run code). Convert it, or use the safetensors release of the model."
        )
    stat = path.stat()
    return _read_header(path, stat.st_mtime_ns, stat.st_size)


# One load asks for an all-in-one checkpoint's header once per part (resolve, check, build), and
# T5's header alone is megabytes of JSON: keep recent ones, keyed so a rewritten file is re-read.
@lru_cache(maxsize=32)
def _read_header(path: Path, mtime_ns: int, size: int) -> WeightsHeader:
    with open(path, "rb") as handle:
        raw = handle.read(8)
        size = struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0
        if not 2 <= size <= 100_000_000:
            raise ModelError(f"{path} is not a valid safetensors file (bad header length); is it complete?")
        try:
            header = json.loads(handle.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelError(f"{path} is not a valid safetensors file (unreadable header)") from None
    header.pop("__metadata__", None)
    return WeightsHeader(path, {k: tuple(v["shape"]) for k, v in header.items()})


def load_part(path: Path | str, prefix: str = "", dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The tensors under `prefix` (prefix removed), optionally cast (fp8 files upcast on load)."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
            if key.startswith(prefix):
                tensors[key[len(prefix) :]] = handle.get_tensor(key)
    tensors = dequantize_scaled_fp8(tensors)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    return tensors


def has_scaled_fp8(shapes: dict[str, tuple[int, ...]]) -> bool:
    return any(key.endswith(".scale_weight") for key in shapes)


def dequantize_scaled_fp8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's "fp8 scaled" files (t5xxl_fp8_e4m3fn_scaled, SAI's *_t5xxlfp8scaled checkpoints)
    store weight / scale in fp8 plus `<layer>.scale_weight`: multiply back, drop the extras. Read
    plainly, those weights would be off by their scale without any error."""
    scales = {k[: -len("scale_weight")] + "weight": v for k, v in tensors.items() if k.endswith(".scale_weight")}
    if not scales:
        return tensors
    out = {}
    for key, value in tensors.items():
        if key.endswith((".scale_weight", ".scale_input")) or key.rsplit(".", 1)[-1] == "scaled_fp8":
            continue
        out[key] = value.float() * scales[key].float() if key in scales else value
    return out


def count_indexed(shapes: dict[str, tuple[int, ...]], prefix: str) -> int:
    """How many `prefix{i}.` blocks exist (0 when none)."""
    indices = {int(k[len(prefix) :].split(".", 1)[0]) for k in shapes if k.startswith(prefix)}
    return max(indices) + 1 if indices else 0


def check_no_meta(module: torch.nn.Module, what: str) -> None:
    """diffusers' single-file converters ignore the config: a file of another size or layout can
    leave weights on `meta` without an error. Refuse such a model here, naming the weights."""
    left = [name for name, p in module.named_parameters() if p.device.type == "meta"]
    left += [name for name, b in module.named_buffers() if b.device.type == "meta"]
    if left:
        raise ModelError(
            f"{what}: {len(left)} weight(s) were not in the file and stayed empty (on `meta`), e.g. "
            f"{', '.join(left[:3])}; the file does not match the detected architecture — is it a "
            "complete, unmodified model file?"
        )
