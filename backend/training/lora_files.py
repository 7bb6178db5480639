"""Checking a LoRA file against the model it is about to be applied to, before anything is applied.

diffusers' loader skips keys it does not recognise with at most a warning, so a LoRA for another
model (or a damaged one) would be applied in part and sample plausible-looking wrong images. Every
path that applies a user's LoRA file (sampling, comparing, ComfyUI) calls `check_lora_file` first:
it reads the safetensors header itself, then the ModelSpec architecture, then the coverage and
shape of every key, and names the file and the first problem it finds.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from torch import nn

_HEADER_LIMIT = 100 * 1024 * 1024  # safetensors' own cap on the JSON header
_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
_PARTS = (".lora_A.weight", ".lora_B.weight")


class LoraFileError(ValueError):
    """A LoRA file cannot be applied to this model; the message names the file and the reason."""


def read_header(path: Path) -> tuple[dict, dict[str, str]]:
    """(tensor entries, metadata) of a safetensors file, checked against the file's real size."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise LoraFileError(f"{path}: not a safetensors file ({size} bytes, too short for a header)")
        (length,) = struct.unpack("<Q", prefix)
        if length > _HEADER_LIMIT:
            raise LoraFileError(f"{path}: not a safetensors file (the first 8 bytes are not a header length)")
        if 8 + length > size:
            raise LoraFileError(
                f"{path}: truncated: its header needs {length} bytes but the file ends after {size - 8}; "
                "copy or download it again"
            )
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LoraFileError(f"{path}: not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise LoraFileError(f"{path}: not a safetensors file (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    _check_entries(path, header, size - 8 - length)
    return header, metadata


def _check_entries(path: Path, entries: dict, data_bytes: int) -> None:
    """Each tensor's byte range must fit its dtype × shape and lie inside the file."""
    end = 0
    for key, entry in entries.items():
        try:
            dtype, shape, (start, stop) = entry["dtype"], entry["shape"], entry["data_offsets"]
            count = 1
            for dim in shape:
                count *= int(dim)
            expected = count * _DTYPE_BYTES[dtype]
        except (KeyError, TypeError, ValueError):
            raise LoraFileError(
                f"{path}: its header describes tensor {key!r} in a form safetensors does not use"
            ) from None
        if stop - start != expected or start < 0:
            raise LoraFileError(
                f"{path}: its header lies about tensor {key!r}: {dtype} {shape} needs {expected} bytes, "
                f"the header gives it {stop - start}"
            )
        end = max(end, stop)
    if end > data_bytes:
        raise LoraFileError(
            f"{path}: truncated: its header places tensors up to byte {end} but only {data_bytes} bytes of "
            "tensor data follow; copy or download it again"
        )


def _target(transformer: nn.Module, modules: dict[str, nn.Module], name: str) -> nn.Module | None:
    module = modules.get(name)
    # A model that already carries a peft adapter wraps each target; its shapes are the base layer's.
    return getattr(module, "base_layer", module)


def _expected_shapes(module: nn.Module) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(lora_A without rank, lora_B without rank) sizes: (in,), (out,) for linear layers."""
    if isinstance(module, nn.Linear):
        return (module.in_features,), (module.out_features,)
    if isinstance(module, nn.Conv2d):
        return (module.in_channels, *module.kernel_size), (module.out_channels, 1, 1)
    return None


def check_lora_file(model, path: Path | str, prefix: str = "transformer") -> dict[str, torch.Tensor]:
    """The tensors of `path`, after checking that all of them fit `model`; else LoraFileError.

    Checked in order: the file exists and is safetensors; its header matches its size; its
    ModelSpec architecture (when present) is this model's; every key is a LoRA A/B weight of a
    module this model has, in pairs, with the model's shapes and one rank per pair.
    """
    path = Path(path)
    if not path.is_file():
        raise LoraFileError(f"LoRA file not found: {path}")
    if path.suffix.lower() != ".safetensors":
        raise LoraFileError(f"{path}: LoRA files must be .safetensors (other formats can run code when loaded)")
    entries, metadata = read_header(path)
    if not entries:
        raise LoraFileError(f"{path}: holds no tensors")
    architecture = metadata.get("modelspec.architecture")
    ours = f"{model.modelspec_architecture}/lora"
    if architecture and architecture != ours:
        title = metadata.get("modelspec.title")
        made = f" ({title!r})" if title else ""
        raise LoraFileError(
            f"{path}: a LoRA for {architecture}{made}, but this model is {model.modelspec_architecture}; "
            "pick the model it was trained for"
        )
    _check_keys(model, path, entries, prefix)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise LoraFileError(f"{path}: unreadable safetensors file: {error}") from None


def _check_keys(model, path: Path, entries: dict, prefix: str) -> None:
    transformer = model.transformer
    modules = dict(transformer.named_modules())
    lead = f"{prefix}." if prefix else ""
    foreign, missing, pairs = [], [], {}
    for key in entries:
        part = next((p for p in _PARTS if key.endswith(p)), None)
        if part is None or not key.startswith(lead):
            foreign.append(key)
            continue
        name = key[len(lead) : -len(part)]
        module = _target(transformer, modules, name)
        if module is None:
            missing.append(key)
            continue
        pairs.setdefault(name, {})[part] = (entries[key]["shape"], module)
    total = len(entries)
    if foreign:
        raise LoraFileError(
            f"{path}: {len(foreign)} of {total} keys are not LoRA weights for a {prefix} "
            f"(e.g. {foreign[0]!r}); expected {lead}<module>.lora_A.weight / .lora_B.weight — "
            "a file from another trainer or another kind of model"
        )
    if missing:
        matched = total - len(missing)
        raise LoraFileError(
            f"{path}: only {matched} of {total} keys match modules of this {model.family} model "
            f"(e.g. {missing[0]!r} has no module); refusing to apply part of a LoRA — it was trained "
            "for another model or architecture"
        )
    for name, parts in pairs.items():
        _check_pair(path, name, parts, lead)


def _check_pair(path: Path, name: str, parts: dict, lead: str) -> None:
    if len(parts) != 2:
        have = next(iter(parts))
        raise LoraFileError(f"{path}: {lead}{name} has {have.strip('.')} without its partner; the file is incomplete")
    (shape_a, module), (shape_b, _) = parts[_PARTS[0]], parts[_PARTS[1]]
    expected = _expected_shapes(module)
    if expected is None:
        raise LoraFileError(f"{path}: {lead}{name} is a {type(module).__name__}, which a LoRA cannot target")
    in_shape, out_shape = expected
    rank = shape_a[0] if shape_a else None
    good_a = len(shape_a) == 1 + len(in_shape) and tuple(shape_a[1:]) == in_shape
    good_b = len(shape_b) == 1 + len(out_shape) and shape_b[0] == out_shape[0] and shape_b[1] == rank
    good_b = good_b and tuple(shape_b[2:]) == out_shape[1:]
    if not (good_a and good_b):
        raise LoraFileError(
            f"{path}: wrong shapes for {lead}{name}: lora_A {list(shape_a)}, lora_B {list(shape_b)}; this model's "
            f"layer needs lora_A [rank, {', '.join(map(str, in_shape))}] and lora_B [{out_shape[0]}, rank"
            f"{''.join(', ' + str(d) for d in out_shape[1:])}] — a LoRA for a differently sized model"
        )
