"""The embedded default: a tiny text-to-image rectified-flow model for the shapes world.

It is diffusers' `SD3Transformer2DModel` in a small configuration, so the same adapter code, LoRA
targets and LoRA export serve it and real SD3. Its "latent" is the image itself, pixel-unshuffled
2× (32×32×3 → 16×16×12): no VAE to train or ship, and decoding is exact. It keeps SD3's head
width of 64, but not ComfyUI's other SD3 conventions (16 latent channels and a trained VAE), which
would need a learned autoencoder: too much weight and pretraining time for a model that must
train in minutes on a laptop. Its text encoder is a small word-level transformer trained with it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import SD3Transformer2DModel
from safetensors.torch import load_file, save_file
from torch import nn

from ..world.shapes import IMAGE_SIZE, vocabulary
from .base import Conditioning, FlowModel, SamplingDefaults
from .registry import EMBEDDED_TINY

WEIGHTS_DIR = EMBEDDED_TINY
_SPECIALS = ["<pad>", "<unk>"]
_WORD_RE = re.compile(r"[a-z]+")
UNSHUFFLE = 2


@dataclass
class TinyConfig:
    """Architecture of the embedded model (saved beside its weights)."""

    text_dim: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_tokens: int = 16
    vocab: list[str] = field(default_factory=lambda: _SPECIALS + vocabulary())
    num_layers: int = 4
    num_attention_heads: int = 2
    attention_head_dim: int = 64
    patch_size: int = 2
    image_size: int = IMAGE_SIZE

    @property
    def latent_channels(self) -> int:
        return 3 * UNSHUFFLE * UNSHUFFLE

    @property
    def latent_size(self) -> int:
        return self.image_size // UNSHUFFLE

    def transformer_config(self) -> dict:
        return {
            "sample_size": self.latent_size,
            "patch_size": self.patch_size,
            "in_channels": self.latent_channels,
            "out_channels": self.latent_channels,
            "num_layers": self.num_layers,
            "attention_head_dim": self.attention_head_dim,
            "num_attention_heads": self.num_attention_heads,
            "joint_attention_dim": self.text_dim,
            "caption_projection_dim": self.attention_head_dim * self.num_attention_heads,
            "pooled_projection_dim": self.text_dim,
            "pos_embed_max_size": self.latent_size,
        }


class WordTextEncoder(nn.Module):
    """Word tokens → (context [B, L, D], pooled [B, D]).

    It adds learned position embeddings: SD3's transformer adds none to text tokens, and without
    them "red circle on a blue background" and "blue circle on a red background" look alike.
    """

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.vocab = {word: index for index, word in enumerate(config.vocab)}
        self.max_tokens = config.max_tokens
        self.token_embedding = nn.Embedding(len(config.vocab), config.text_dim)
        self.position_embedding = nn.Parameter(torch.zeros(config.max_tokens, config.text_dim))
        nn.init.normal_(self.position_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(
            config.text_dim, config.text_heads, config.text_dim * 2, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.text_dim)

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        ids = torch.zeros(len(prompts), self.max_tokens, dtype=torch.long)
        unk = self.vocab["<unk>"]
        for row, prompt in enumerate(prompts):
            words = _WORD_RE.findall(prompt.lower())[: self.max_tokens]
            ids[row, : len(words)] = torch.tensor([self.vocab.get(w, unk) for w in words], dtype=torch.long)
        return ids

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = ids == 0
        hidden = self.token_embedding(ids) + self.position_embedding[None, : ids.shape[1]]
        hidden = self.norm(self.encoder(hidden, src_key_padding_mask=pad))
        keep = (~pad).unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return hidden * keep, pooled


class TinyFlowModel(FlowModel):
    family = "tiny"
    modelspec_architecture = "neighbor-grpo-tiny-sd3"
    defaults = SamplingDefaults(solver="dpmpp2m", steps=8, shift=1.0, resolution=IMAGE_SIZE)

    def __init__(self, config: TinyConfig | None = None):
        super().__init__()
        self.config = config or TinyConfig()
        self.text_encoder = WordTextEncoder(self.config)
        self.transformer = SD3Transformer2DModel(**self.config.transformer_config())

    def encode_prompts(self, prompts: list[str]) -> Conditioning:
        ids = self.tokenize(prompts)
        context, pooled = self.text_encoder(ids)
        return Conditioning(context.to(self.dtype), pooled.to(self.dtype))

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        return self.text_encoder.tokenize(prompts).to(self.device)

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        # The transformer computes in its own dtype (or autocast's); the caller's dtype comes back.
        out_dtype, x = x.dtype, x.to(self.dtype)
        sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).reshape(-1).expand(x.shape[0])
        return self.transformer(
            hidden_states=x,
            encoder_hidden_states=cond.context,
            pooled_projections=cond.pooled,
            timestep=sigma * 1000.0,
            return_dict=False,
        )[0].to(out_dtype)

    def noise_shape(self, batch: int, resolution: int | None = None) -> tuple[int, ...]:
        size = (resolution or self.config.image_size) // UNSHUFFLE
        return (batch, self.config.latent_channels, size, size)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in 0..1 → latents in [-1, 1] (exact inverse of `decode`)."""
        return F.pixel_unshuffle(images * 2.0 - 1.0, UNSHUFFLE)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((F.pixel_shuffle(latents.float(), UNSHUFFLE) + 1.0) / 2.0).clamp(0.0, 1.0)

    def save(self, folder: Path | str, metadata: dict[str, str] | None = None) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().float().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt", **(metadata or {})})
        (folder / "config.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path | str | None = None) -> TinyFlowModel:
        folder = Path(folder) if folder is not None else WEIGHTS_DIR
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(
                f"no tiny model weights at {weights}; the embedded model ships in the repository "
                "under weights/tiny/ — restore it with git, or rebuild it with `ngrpo pretrain-tiny`"
            )
        config = TinyConfig(**json.loads((folder / "config.json").read_text()))
        model = cls(config)
        model.load_state_dict(load_file(str(weights)))
        return model.eval().requires_grad_(False)
