"""Building a real model's components from resolved parts: the transformer (optionally with a
quantized frozen base), CLIP/T5 text encoders, the VAE and the tokenizers — offline, from shipped
or inferred configs, never from a hub."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from .architectures import detect_text_encoder, detect_vae
from .sources import ModelSource, Part
from .weights_files import ModelError, check_no_meta, has_scaled_fp8, load_part, read_header

QUANTIZATIONS = ("none", "int8", "nf4")


def transformer_class(family: str):
    from diffusers import FluxTransformer2DModel, SD3Transformer2DModel

    return {"sd3": SD3Transformer2DModel, "flux": FluxTransformer2DModel}[family]


def load_transformer(source: ModelSource, dtype: torch.dtype) -> nn.Module:
    architecture, part = source.architecture, source.transformer
    cls = transformer_class(architecture.family)
    if part.is_folder:
        model = cls.from_pretrained(str(part.path), torch_dtype=dtype, local_files_only=True)
    elif architecture.layout == "diffusers":
        model = _build_and_load(cls, architecture.config, part, dtype)
    else:  # SAI / BFL key names: diffusers converts them, with our config so nothing is looked up
        scaled = has_scaled_fp8(read_header(part.path).part(part.prefix))
        # Scaled fp8 files are dequantized first (diffusers would drop their scales silently).
        weights = load_part(part.path, part.prefix, dtype) if scaled else str(part.path)
        model = _from_single_file(cls, weights, architecture.config, dtype)
    check_no_meta(model, f"{architecture.label} transformer from {part.path}")
    return model


def _from_single_file(cls, weights, config: dict, dtype: torch.dtype) -> nn.Module:
    """diffusers' converter for original (SAI / BFL / LDM) key names, given our config as a local
    folder so it never looks one up on the hub."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "part").mkdir()
        (Path(folder) / "part" / "config.json").write_text(json.dumps({"_class_name": cls.__name__, **config}))
        return cls.from_single_file(weights, config=folder, subfolder="part", local_files_only=True, torch_dtype=dtype)


def _build_and_load(cls, config: dict, part: Part, dtype: torch.dtype) -> nn.Module:
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = cls.from_config(config)
    state = load_part(part.path, part.prefix, dtype)
    result = model.load_state_dict(state, strict=False, assign=True)
    if result.unexpected_keys:
        raise ModelError(
            f"{part.path}: {len(result.unexpected_keys)} weight(s) do not belong to the detected "
            f"architecture, e.g. {', '.join(result.unexpected_keys[:3])}"
        )
    return model.to(dtype)


def quantize_base(transformer: nn.Module, mode: str) -> None:
    """Quantize the frozen transformer's linear weights in place (torchao, the backend diffusers'
    TorchAoConfig uses); a LoRA added afterwards trains in full precision on top of them.

    int8: weight-only int8, runs on CPU and GPU, about half of bf16's memory. nf4: 4-bit
    NormalFloat weights (QLoRA's format), about a quarter."""
    if mode == "none":
        return
    if mode not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {mode!r}; choose one of {', '.join(QUANTIZATIONS)}")
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError:
        raise ModelError("lora.quantize_base needs torchao: pip install torchao") from None

    # Only the transformer blocks' big projections: embedders and norms stay exact and small.
    def is_block_linear(module: nn.Module, name: str) -> bool:
        return isinstance(module, nn.Linear) and "transformer_blocks." in name and module.in_features >= 64

    if mode == "int8":
        quantize_(transformer, Int8WeightOnlyConfig(), filter_fn=is_block_linear)
        return
    from torchao.quantization.quantize_.workflows.nf4.nf4_tensor import to_nf4

    for name, module in transformer.named_modules():
        if is_block_linear(module, name) and module.weight.numel() % (64 * 256) == 0:  # NF4 block sizes
            module.weight = nn.Parameter(to_nf4(module.weight.data), requires_grad=False)


def load_text_encoder(part: Part, role: str, family: str, dtype: torch.dtype) -> nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    if role == "t5":
        cls, config_cls = T5EncoderModel, T5Config
    else:  # SD3 pools through CLIP's projection; FLUX takes CLIP-L's pooled output as is
        cls, config_cls = (CLIPTextModelWithProjection if family == "sd3" else CLIPTextModel), CLIPTextConfig
    if part.is_folder:
        return cls.from_pretrained(str(part.path), dtype=dtype, local_files_only=True)
    config = config_cls(**detect_text_encoder(read_header(part.path).part(part.prefix), role, str(part.path)))
    state = _match_keys(cls, config, load_part(part.path, part.prefix, dtype), part)
    projection = "text_projection.weight" in state
    model = cls.from_pretrained(None, config=config, state_dict=state, dtype=dtype)
    if cls is CLIPTextModelWithProjection and not projection:
        # ComfyUI's SD3 clip_l files carry no projection: SD3 uses CLIP-L's pooled output as is.
        with torch.no_grad():
            model.text_projection.weight.copy_(torch.eye(config.projection_dim, config.hidden_size))
    check_no_meta(model, f"{role} text encoder from {part.path}")
    return model


def _match_keys(cls, config, state: dict[str, torch.Tensor], part: Part) -> dict[str, torch.Tensor]:
    """The file's tensors under the names this transformers version expects (CLIP's `text_model.`
    prefix comes and goes between versions), refusing a file that lacks any: transformers would
    silently initialise missing weights at random."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        expected = set(cls(config).state_dict())
    prefixed = any(k.startswith("text_model.") for k in expected)

    def rename(key: str) -> str:
        base = key.removeprefix("text_model.")
        return "text_model." + base if prefixed and not base.startswith("text_projection") else base

    state = {rename(k): v for k, v in state.items() if rename(k) in expected}
    for tied in (("shared.weight", "encoder.embed_tokens.weight"), ("encoder.embed_tokens.weight", "shared.weight")):
        if tied[0] in expected and tied[0] not in state and tied[1] in state:
            state[tied[0]] = state[tied[1]]
    missing = sorted(expected - set(state) - {"text_projection.weight"})
    if missing:
        raise ModelError(
            f"{part.path}: {len(missing)} text-encoder weight(s) missing, e.g. {', '.join(missing[:3])}; "
            "is it a complete CLIP/T5 text-encoder file?"
        )
    return state


def load_vae(part: Part, family: str, dtype: torch.dtype) -> nn.Module:
    from diffusers import AutoencoderKL

    if part.is_folder:
        return AutoencoderKL.from_pretrained(str(part.path), torch_dtype=dtype, local_files_only=True)
    header = read_header(part.path)
    config = detect_vae(header.part(part.prefix), family, str(part.path))
    if f"{part.prefix}encoder.down_blocks.0.resnets.0.conv1.weight" in header.shapes:
        model = _build_and_load(AutoencoderKL, config, part, dtype)
    else:
        model = _from_single_file(AutoencoderKL, str(part.path), config, dtype)
    check_no_meta(model, f"VAE from {part.path}")
    return model


def clip_tokenizer(role: str, folder: Path | None = None):
    """CLIP's BPE tokenizer: the model folder's, else rebuilt from open_clip's bundled vocabulary
    (the same ids as OpenAI's). SD3's second CLIP pads with "!", as diffusers' tokenizer_2 does."""
    from transformers import CLIPTokenizer

    if folder is not None:
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    from open_clip.tokenizer import SimpleTokenizer

    bpe = SimpleTokenizer()
    merges = [tuple(pair) for pair, _ in sorted(bpe.bpe_ranks.items(), key=lambda item: item[1])]
    # open_clip names the two special tokens differently; their ids (49406, 49407) are the same.
    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    return CLIPTokenizer(
        vocab={names.get(token, token): index for token, index in bpe.encoder.items()},
        merges=merges,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="!" if role == "clip_g" else "<|endoftext|>",
        model_max_length=77,
    )


def t5_tokenizer(part: Part | None):
    if part is None:
        raise ModelError("no T5 tokenizer: give t5_tokenizer: FOLDER (spiece.model or tokenizer.json)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(part.path), local_files_only=True)
