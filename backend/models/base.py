"""The interface every text-to-image flow model implements (embedded tiny model, SD3, FLUX).

Convention (rectified flow, as diffusers' flow-matching schedulers): x_σ = (1 − σ)·x0 + σ·ε with
σ from 1 (noise) to 0 (data), and the model predicts the velocity v = ε − x0, so an Euler step is
x_{σ'} = x_σ + (σ' − σ)·v.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

import torch
from torch import nn

# Default LoRA targets (peft suffix match) of the real model families, as diffusers names modules.
# SD3 joint blocks: image and context attention projections (the last block is context_pre_only,
# so it has no to_add_out: peft skips what is absent). FLUX single blocks have no to_out: their
# attention is to_q/k/v and their output goes through proj_mlp and proj_out.
SD3_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
FLUX_LORA_TARGETS = (*SD3_LORA_TARGETS, "proj_mlp", "proj_out")


@dataclass
class Conditioning:
    """Encoded prompts: per-token context, a pooled vector, and model-specific extras."""

    context: torch.Tensor  # [B, L, D]
    pooled: torch.Tensor  # [B, P]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.context.shape[0]

    def select(self, index: torch.Tensor | list[int]) -> Conditioning:
        """Rows at these indices (repeats allowed: use it to expand prompts into groups)."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.context.device)
        return replace(
            self,
            context=self.context.index_select(0, index),
            pooled=self.pooled.index_select(0, index),
            extra={k: v.index_select(0, index) for k, v in self.extra.items()},
        )

    def repeat_each(self, count: int) -> Conditioning:
        """Each row repeated `count` times in place: [a, b] → [a, a, b, b] for count 2."""
        index = torch.arange(len(self), device=self.context.device).repeat_interleave(count)
        return self.select(index)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Conditioning:
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return Conditioning(move(self.context), move(self.pooled), {k: move(v) for k, v in self.extra.items()})


@dataclass(frozen=True)
class SamplingDefaults:
    """What a model family samples with unless told otherwise."""

    solver: str = "dpmpp2m"
    steps: int = 8
    shift: float = 1.0  # SD3-style time shift; 3.0 for SD3 at 1024 px
    guidance: float = 1.0
    resolution: int = 32


class FlowModel(nn.Module, ABC):
    """A text-conditioned rectified-flow model, with the trainable network as `.transformer`."""

    family: str = "abstract"
    modelspec_architecture: str = "abstract"  # SAI ModelSpec architecture, e.g. stable-diffusion-3-medium
    transformer: nn.Module
    defaults: SamplingDefaults = SamplingDefaults()
    # Module-name suffixes a LoRA adapts by default (peft `target_modules`).
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")

    @abstractmethod
    def encode_prompts(self, prompts: list[str]) -> Conditioning:
        """Encode prompts once; conditioning does not depend on the trained weights."""

    @abstractmethod
    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """v_θ(x, σ, c) for latents x [B, ...] and σ [B] (or a scalar) in [0, 1]."""

    @abstractmethod
    def noise_shape(self, batch: int, resolution: int | None = None) -> tuple[int, ...]:
        """Shape of the initial noise for `batch` images at `resolution` pixels."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → float images [B, 3, H, W] in 0..1."""

    def sigmas(self, steps: int, shift: float | None = None, resolution: int | None = None) -> torch.Tensor:
        """The σ schedule (steps + 1 values, 1 → 0) this model samples with; `shift` overrides the
        model's. Real families override it to match diffusers' own scheduler exactly."""
        from ..solvers import sigma_schedule

        return sigma_schedule(steps, shift if shift is not None else self.defaults.shift)

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    def initial_noise(self, seeds: list[int], resolution: int | None = None) -> torch.Tensor:
        """Initial noise, one seeded CPU generator per image so results do not depend on batching
        or device."""
        shape = self.noise_shape(1, resolution)[1:]
        noise = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        return torch.stack(noise).to(self.device)  # float32: solver states keep full precision
