"""Stable Diffusion 3 / 3.5 (MMDiT): CLIP-L + CLIP-G + T5-XXL prompts, classifier-free guidance,
time shift 3.0 — the σ schedule and velocity call exactly as diffusers' StableDiffusion3Pipeline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..solvers import shift_sigmas
from .base import SD3_LORA_TARGETS, Conditioning, SamplingDefaults
from .latent import LatentFlowModel, clip_encode, t5_encode

T5_TOKENS = 256  # diffusers' default max_sequence_length for SD3
SHIFT = 3.0
# Training timesteps of diffusers' FlowMatchEulerDiscreteScheduler (its sigma_min comes from them).
TRAIN_TIMESTEPS = 1000
MODELSPEC = {
    "transformer_sd3_medium": "stable-diffusion-3-medium",
    "transformer_sd35_medium": "stable-diffusion-3.5-medium",
    "transformer_sd35_large": "stable-diffusion-3.5-large",
}


class SD3FlowModel(LatentFlowModel):
    family = "sd3"
    modelspec_architecture = "stable-diffusion-3-medium"
    lora_targets = SD3_LORA_TARGETS
    defaults = SamplingDefaults(solver="euler", steps=28, shift=SHIFT, guidance=4.5, resolution=1024)

    def _uses_negative(self) -> bool:
        return self.guidance > 1.0

    def _encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        tok, enc, device = self.parts.tokenizers, self.parts.encoders, self.device
        l_hidden, l_pooled = clip_encode(tok["clip_l"], enc["clip_l"], prompts, device)
        g_hidden, g_pooled = clip_encode(tok["clip_g"], enc["clip_g"], prompts, device)
        t5 = t5_encode(tok["t5"], enc["t5"], prompts, T5_TOKENS, device)
        clip = torch.cat([l_hidden, g_hidden], dim=-1)
        clip = F.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))  # CLIP's 2048 channels zero-padded to T5's
        return {"context": torch.cat([clip, t5.to(clip.dtype)], dim=-2), "pooled": torch.cat([l_pooled, g_pooled], -1)}

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        out_dtype, x = x.dtype, x.to(self.dtype)
        sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).reshape(-1).expand(x.shape[0])
        context, pooled = cond.context, cond.pooled
        guided = self.guidance > 1.0 and "neg_context" in cond.extra
        if guided:  # one batched pass: [unconditional, conditional], as diffusers does
            x, sigma = torch.cat([x, x]), torch.cat([sigma, sigma])
            context = torch.cat([cond.extra["neg_context"], context])
            pooled = torch.cat([cond.extra["neg_pooled"], pooled])
        v = self.transformer(
            hidden_states=x,
            encoder_hidden_states=context,
            pooled_projections=pooled,
            timestep=sigma * TRAIN_TIMESTEPS,
            return_dict=False,
        )[0]
        if guided:
            unconditional, conditional = v.chunk(2)
            v = unconditional + self.guidance * (conditional - unconditional)
        return v.to(out_dtype)

    def sigmas(self, steps: int, shift: float | None = None, resolution: int | None = None) -> torch.Tensor:
        """diffusers' schedule: N values from 1 down to the shifted σ_min of its 1000 training
        steps, linearly spaced, shifted (again), then 0."""
        s = shift if shift is not None else self.defaults.shift
        sigma_min = float(shift_sigmas(torch.tensor(1.0 / TRAIN_TIMESTEPS, dtype=torch.float64), s))
        sigmas = shift_sigmas(torch.linspace(1.0, sigma_min, steps, dtype=torch.float64), s)
        return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)]).float()
