"""An estimate of a training run's peak GPU memory, from the config and the model files' headers
alone (nothing is loaded), and a clear refusal with suggestions when it cannot fit.

The model is deliberately simple and errs high: weights at their stored width; trained weights
with fp32 master, gradient and two Adam moments (16 B per parameter); the text encoders visit the
GPU one at a time beside the transformer; rollouts hold one transformer block's activations for
the whole P·G batch plus the stored trajectory; a trained pass stores about 34 B per token and
channel per block (the transformer rule of thumb of Korthikanti et al. for 16-bit activations),
or only each block's input when gradient checkpointing recomputes the rest. Measured peaks from
bench/gpu_iter.py are the check on it (docs/models.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

GB = 1024**3
_OVERHEAD = 1.0 * GB  # CUDA context, allocator slack, the VAE decoding a few images
_TRAINED_BYTES = 16  # fp32 weight + fp32 gradient + Adam's two fp32 moments
_BASE_BYTES = {"none": None, "int8": 1.0, "nf4": 0.56}  # nf4: 4 bits + per-block scales


@dataclass
class MemoryEstimate:
    parts: dict[str, float]  # bytes per component of the peak
    peak: float  # bytes
    budget: float | None = None  # bytes available, when known
    suggestions: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.budget is None or self.peak <= self.budget

    def summary(self) -> str:
        lines = [f"estimated peak GPU memory {self.peak / GB:.1f} GB" + (
            f" of {self.budget / GB:.1f} GB available" if self.budget is not None else "")]  # fmt: skip
        lines += [f"  {name}: {value / GB:.2f} GB" for name, value in self.parts.items()]
        if not self.fits:
            lines.append("does not fit; try: " + "; ".join(self.suggestions))
        return "\n".join(lines)


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know of a model."""

    transformer_params: int
    lora_params_per_rank: int  # Σ (in + out) over the default LoRA targets
    width: int
    blocks: int
    patch_tokens_per_pixel: float  # image tokens = resolution² × this
    text_tokens: int
    latent_elements_per_pixel: float
    encoder_params: dict[str, int]
    guidance_doubles: bool  # SD3's CFG runs two passes per step


def model_shape(spec: str | dict) -> ModelShape:
    """Sizes of a real model from its files' headers (nothing is loaded)."""
    from . import sources
    from .weights_files import read_header

    source = sources.resolve(spec)
    encoders = {}
    for role in sources.FAMILY_ENCODERS[source.family]:
        part = source.parts.get(role)
        if part is not None:
            files = sorted(part.path.glob("*.safetensors")) if part.is_folder else [part.path]
            prefix = "" if part.is_folder else part.prefix
            encoders[role] = sum(read_header(f).parameters(prefix) for f in files)
    return shape_of(source.architecture.family, source.architecture.config, encoders)


def shape_of(family: str, config: dict, encoder_params: dict[str, int]) -> ModelShape:
    """Sizes from a transformer config (built on `meta`: no memory, no weights)."""
    from accelerate import init_empty_weights
    from torch import nn

    from . import sd3
    from .loading import transformer_class
    from .real import FAMILIES

    with init_empty_weights():
        transformer = transformer_class(family).from_config(config)
    targets = FAMILIES[family].lora_targets
    lora = sum(
        m.in_features + m.out_features
        for name, m in transformer.named_modules()
        if isinstance(m, nn.Linear) and any(name.endswith(t) for t in targets)
    )
    width = config["num_attention_heads"] * config["attention_head_dim"]
    if family == "sd3":
        blocks, patch, text = config["num_layers"], config["patch_size"], 77 + sd3.T5_TOKENS
    else:  # a single block costs about half a double block; 2×2 packing acts as patch 2
        blocks, patch, text = config["num_layers"] + config["num_single_layers"] // 2, 2, 512
    return ModelShape(
        transformer_params=sum(p.numel() for p in transformer.parameters()),
        lora_params_per_rank=lora,
        width=width,
        blocks=blocks,
        patch_tokens_per_pixel=1.0 / (8 * patch) ** 2,
        text_tokens=text,
        latent_elements_per_pixel=16 / 64,
        encoder_params=encoder_params,
        guidance_doubles=family == "sd3",
    )


def estimate(config, shape: ModelShape, budget: float | None = None, processes: int = 1) -> MemoryEstimate:
    """Peak bytes of one training run (`config`: a TrainConfig) on one GPU, of `processes` (one
    per GPU) that share it: they shard a full fine-tune's state under distributed.fsdp."""
    resolution = config.resolution or 1024
    bf16 = config.optimizer.mixed_precision == "bf16"
    quantize = config.lora.quantize_base
    base_bytes = _BASE_BYTES[quantize] or (2.0 if bf16 else 4.0)
    neighbor = config.algorithm == "neighbor_grpo"
    steps = config.neighbor.steps if neighbor else config.sde.steps
    tokens = resolution**2 * shape.patch_tokens_per_pixel + shape.text_tokens
    act_bytes = 2.0 if bf16 else 4.0
    passes = 2 if shape.guidance_doubles and (config.guidance or 4.5) > 1 else 1
    rollout_batch = config.prompts_per_iteration * config.group_size * passes
    micro = config.optimizer.micro_batch * passes

    parts: dict[str, float] = {}
    if config.lora.enabled:
        parts["transformer weights (frozen)"] = shape.transformer_params * base_bytes
        trainable = shape.lora_params_per_rank * config.lora.rank
        parts["LoRA + gradients + AdamW"] = trainable * _TRAINED_BYTES
    elif config.distributed.fsdp and processes > 1:
        # Each GPU keeps its shard, plus one block gathered whole while it runs (and the next one
        # prefetched): two blocks' weights and gradients in fp32.
        shard = shape.transformer_params * _TRAINED_BYTES / processes
        gathered = 2 * 8 * shape.transformer_params / max(1, shape.blocks)
        parts[f"transformer + gradients + AdamW (fp32), sharded over {processes} GPUs"] = shard + gathered
    else:
        parts["transformer + gradients + AdamW (fp32)"] = shape.transformer_params * _TRAINED_BYTES
    encoder = max(shape.encoder_params.values(), default=0) * (2.0 if bf16 else 4.0)
    one_block = 34 * tokens * shape.width * act_bytes / 2  # the rule of thumb is for 2-byte activations
    rollout = rollout_batch * one_block / 4  # no graph kept: about a quarter of a trained block's
    rollout += (steps + 1) * config.prompts_per_iteration * config.group_size * resolution**2 * (
        shape.latent_elements_per_pixel * 4)  # fmt: skip
    if config.optimizer.gradient_checkpointing:
        train = micro * (shape.blocks * tokens * shape.width * act_bytes + one_block)
    else:
        train = micro * shape.blocks * one_block
    phase = {"text encoder (largest, while encoding)": encoder, "rollout": rollout, "trained passes": train}
    name = max(phase, key=phase.get)
    parts[f"peak phase: {name}"] = phase[name]
    parts["CUDA context and slack"] = _OVERHEAD
    peak = sum(parts.values())
    result = MemoryEstimate(parts, peak, budget)
    if not result.fits:
        result.suggestions = _suggestions(config, name)
    return result


def _suggestions(config, phase: str) -> list[str]:
    out = []
    if config.optimizer.mixed_precision != "bf16":
        out.append("optimizer.mixed_precision: bf16")
    if not config.optimizer.gradient_checkpointing:
        out.append("optimizer.gradient_checkpointing: true")
    if config.optimizer.micro_batch > 1:
        out.append(f"optimizer.micro_batch: {max(1, config.optimizer.micro_batch // 4)}")
    if not config.lora.enabled:
        out.append("lora.enabled: true (full fine-tuning needs 16 bytes per parameter)")
        if not config.distributed.fsdp:
            out.append("distributed.fsdp: true on several GPUs (each keeps 1/N of those 16 bytes)")
    elif config.lora.quantize_base != "nf4":
        out.append(f"lora.quantize_base: {'int8' if config.lora.quantize_base == 'none' else 'nf4'}")
    if phase == "rollout":
        out.append(f"prompts_per_iteration: {max(1, config.prompts_per_iteration // 2)}")
    if (config.resolution or 1024) > 512:
        out.append("resolution: 512")
    return out


def plan_memory(config, budget_gb: float | None = None, device: str | None = None) -> MemoryEstimate | None:
    """The dashboard's and CLI's entry point: an estimate for a real-model config (None for the
    embedded tiny model, which needs no planning). The budget is `budget_gb`, else the total memory
    of `device` when it is a CUDA device. A sharded full fine-tune (distributed.fsdp) counts on
    the processes of the launcher it runs under (WORLD_SIZE), else on every GPU of this machine,
    which a worker started with --nproc-per-node normally uses."""
    from .registry import is_registered

    if is_registered(config.model):
        return None
    budget = budget_gb * GB if budget_gb is not None else None
    device = _default_device() if device in (None, "auto") else device
    if budget is None and str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            # The card's total, not what is free now: a worker frees ComfyUI's models and waits
            # for other runs before it trains, so what matters is whether the run fits at all.
            budget = float(torch.cuda.mem_get_info(torch.device(device))[1])
    return estimate(config, model_shape(config.model), budget, _processes())


def _processes() -> int:
    import os

    import torch

    world = int(os.environ.get("WORLD_SIZE", "0"))
    return world or max(1, torch.cuda.device_count() if torch.cuda.is_available() else 1)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
