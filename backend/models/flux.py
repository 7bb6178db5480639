"""FLUX.1 dev / schnell: CLIP-L pooled + T5-XXL prompts, the guidance embedding (dev) instead of
CFG, 2×2 latent packing, and the resolution-dependent time shift μ — as diffusers' FluxPipeline."""

from __future__ import annotations

import torch

from .. import solvers
from .base import FLUX_LORA_TARGETS, Conditioning, SamplingDefaults
from .latent import LatentFlowModel, clip_encode, t5_encode

# Shipped transformer config → ModelSpec architecture written into saved LoRA files.
MODELSPEC = {"transformer_flux1_dev": "flux-1-dev", "transformer_flux1_schnell": "flux-1-schnell"}


def pack(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] → [B, (H/2)(W/2), 4C]: each 2×2 patch becomes one token."""
    b, c, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    b, _, channels = tokens.shape
    x = tokens.view(b, height // 2, width // 2, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, channels // 4, height, width)


def image_ids(height: int, width: int, device, dtype) -> torch.Tensor:
    """Rotary position ids of the packed tokens: (0, row, column)."""
    ids = torch.zeros(height // 2, width // 2, 3)
    ids[..., 1] = torch.arange(height // 2)[:, None]
    ids[..., 2] = torch.arange(width // 2)[None, :]
    return ids.reshape(-1, 3).to(device, dtype)


class FluxFlowModel(LatentFlowModel):
    family = "flux"
    modelspec_architecture = "flux-1-dev"
    lora_targets = FLUX_LORA_TARGETS
    defaults = SamplingDefaults(solver="euler", steps=28, shift=1.0, guidance=3.5, resolution=1024)

    @property
    def guidance_embedded(self) -> bool:
        return bool(self.transformer.config.guidance_embeds)

    @property
    def t5_tokens(self) -> int:
        return 512 if self.guidance_embedded else 256  # dev 512, schnell 256 (diffusers' defaults)

    def _encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        tok, enc, device = self.parts.tokenizers, self.parts.encoders, self.device
        _, pooled = clip_encode(tok["clip_l"], enc["clip_l"], prompts, device)
        return {"context": t5_encode(tok["t5"], enc["t5"], prompts, self.t5_tokens, device), "pooled": pooled}

    def noise_shape(self, batch: int, resolution: int | None = None) -> tuple[int, ...]:
        # Packing needs even latent sizes: FluxPipeline rounds the image down to a multiple of 16.
        size = 2 * ((resolution or self.defaults.resolution) // (self.vae_scale * 2))
        return (batch, self.parts.vae.config.latent_channels, size, size)

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        out_dtype, dtype = x.dtype, self.dtype
        height, width = x.shape[-2:]
        sigma = torch.as_tensor(sigma, device=x.device, dtype=dtype).reshape(-1).expand(x.shape[0])
        guidance = None
        if self.guidance_embedded:
            guidance = torch.full((x.shape[0],), float(self.guidance), device=x.device, dtype=dtype)
        v = self.transformer(
            hidden_states=pack(x.to(dtype)),
            timestep=sigma,
            guidance=guidance,
            pooled_projections=cond.pooled,
            encoder_hidden_states=cond.context,
            txt_ids=torch.zeros(cond.context.shape[1], 3, device=x.device, dtype=dtype),
            img_ids=image_ids(height, width, x.device, dtype),
            return_dict=False,
        )[0]
        return unpack(v, height, width).to(out_dtype)

    def sigmas(self, steps: int, shift: float | None = None, resolution: int | None = None) -> torch.Tensor:
        """diffusers' FluxPipeline: N values linspace(1, 1/N), then dev's exponential shift with μ
        from the number of image tokens (schnell: no shift); then 0. A given `shift` replaces μ
        with SD3's fixed shift."""
        sigmas = torch.linspace(1.0, 1.0 / steps, steps, dtype=torch.float64)
        if shift is not None:
            sigmas = solvers.shift_sigmas(sigmas, shift)
        elif self.guidance_embedded:
            tokens = (self.noise_shape(1, resolution)[-1] // 2) ** 2
            sigmas = solvers.flux_shift(sigmas, solvers.flux_mu(tokens))
        return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)]).float()
