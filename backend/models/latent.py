"""What every real (VAE-latent) family shares: frozen text encoders and a VAE kept off the GPU
between uses, prompt encodings cached per prompt, and a chunked (tiled when large) VAE decode.
A family module adds its prompt encoding, its velocity call and its σ schedule."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

from .base import Conditioning, FlowModel

_DECODE_CHUNK = 4  # images per VAE decode: the decoder's activations dominate its memory


@dataclass
class FrozenParts:
    """Text encoders, tokenizers and the VAE. Held outside the nn.Module tree on purpose:
    `model.to(cuda)` then moves only the transformer, and these visit the GPU only while used."""

    vae: nn.Module
    encoders: dict[str, nn.Module]
    tokenizers: dict[str, object] = field(default_factory=dict)


class LatentFlowModel(FlowModel):
    label: str = "abstract"

    def __init__(self, transformer: nn.Module, parts: FrozenParts, label: str, offload: bool = True):
        super().__init__()
        self.transformer = transformer
        self.parts = parts
        self.label = label
        self.offload = offload  # keep text encoders and VAE on the CPU except while they run
        self.guidance = self.defaults.guidance
        self._cache: dict[str, dict[str, torch.Tensor]] = {}
        self.vae_scale = 2 ** (len(parts.vae.config.block_out_channels) - 1)

    # -- prompts ---------------------------------------------------------------------------------
    @abstractmethod
    def _encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Per-prompt tensors: at least `context` [n, L, D] and `pooled` [n, P]."""

    def _uses_negative(self) -> bool:
        return False

    def encode_prompts(self, prompts: list[str]) -> Conditioning:
        """Encodings come from a per-prompt cache (they do not depend on the trained weights);
        only new prompts run the text encoders, which leave the GPU again afterwards."""
        wanted = list(prompts) + ([""] if self._uses_negative() else [])
        new = [p for p in dict.fromkeys(wanted) if p not in self._cache]
        if new:
            with self._on_device(*self.parts.encoders.values()), torch.no_grad():
                rows = self._encode(new)
            for index, prompt in enumerate(new):
                self._cache[prompt] = {name: value[index].cpu() for name, value in rows.items()}

        def stack(name: str, keys: list[str]) -> torch.Tensor:
            return torch.stack([self._cache[k][name] for k in keys]).to(self.device, self.dtype)

        extra = {name: stack(name, prompts) for name in self._cache[prompts[0]] if name not in ("context", "pooled")}
        if self._uses_negative():
            negative = [""] * len(prompts)
            extra.update(neg_context=stack("context", negative), neg_pooled=stack("pooled", negative))
        return Conditioning(stack("context", prompts), stack("pooled", prompts), extra)

    def clear_prompt_cache(self) -> None:
        self._cache.clear()

    def _on_device(self, *modules: nn.Module):
        model = self

        class Visit:
            def __enter__(self):
                for module in modules:
                    module.to(model.device)

            def __exit__(self, *exc):
                if model.offload and model.device.type != "cpu":
                    for module in modules:
                        module.to("cpu")
                    torch.cuda.empty_cache()

        return Visit()

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype: a quantized base reports its original float dtype. Asked on every
        velocity call, so it stops at the first float parameter."""
        return next((p.dtype for p in self.transformer.parameters() if p.dtype.is_floating_point), torch.float32)

    # -- latents ---------------------------------------------------------------------------------
    def latent_size(self, resolution: int | None) -> int:
        return (resolution or self.defaults.resolution) // self.vae_scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.parts.vae
        config = vae.config
        if latents.shape[-1] * self.vae_scale > 1024:
            vae.enable_tiling()  # tiles only above the VAE's own 1024 px tile size
        images = []
        with self._on_device(vae):
            for chunk in latents.split(_DECODE_CHUNK):
                z = chunk.to(self.device, vae.dtype) / config.scaling_factor + (config.shift_factor or 0.0)
                images.append(vae.decode(z, return_dict=False)[0].float())
        return (torch.cat(images) / 2 + 0.5).clamp(0, 1)

    def noise_shape(self, batch: int, resolution: int | None = None) -> tuple[int, ...]:
        size = self.latent_size(resolution)
        return (batch, self.parts.vae.config.latent_channels, size, size)


def clip_encode(tokenizer, encoder: nn.Module, prompts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(penultimate hidden states, pooled output) as SD3 uses them; FLUX uses the pooled one."""
    ids = tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    out = encoder(ids.to(device), output_hidden_states=True)
    pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
    return out.hidden_states[-2], pooled


def t5_encode(tokenizer, encoder: nn.Module, prompts: list[str], max_length: int, device) -> torch.Tensor:
    ids = tokenizer(
        prompts, padding="max_length", max_length=max_length, truncation=True, add_special_tokens=True,
        return_tensors="pt",
    ).input_ids  # fmt: skip
    return encoder(ids.to(device))[0]
