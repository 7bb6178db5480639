"""PickScore (Kirstain et al. 2023): a fine-tuned CLIP ViT-H/14 in transformers format, from a
local folder (config.json + model.safetensors or pytorch_model.bin), never from the hub.

The published folder has no tokenizer (its processor lives in another repository), so prompts are
tokenised with CLIP's BPE as bundled with open_clip: the same ids, padded the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .base import Reward
from .clip_models import OPENAI_MEAN, OPENAI_STD, clip_pixels, dtype_option
from .options import Options
from .registry import RewardEntry, register_reward
from .weights import WeightsLookup, fingerprint

_CLIP_VOCAB = 49408


def _features(output) -> torch.Tensor:
    # transformers 5 returns a model output where 4.x returned the projected tensor.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class PickScore(Reward):
    """logit_scale · cosine(image, prompt), as the PickScore paper scores (about 15..25)."""

    name = "pickscore"
    needs_weights = True
    default_batch_size = 32

    def __init__(self, folder: Path, device, dtype: torch.dtype, batch_size: int | None = None):
        from open_clip import SimpleTokenizer
        from transformers import CLIPModel

        super().__init__(device, batch_size)
        self.dtype = dtype
        self.model = CLIPModel.from_pretrained(folder, local_files_only=True, dtype=dtype)
        self.model = self.model.to(self.device).eval().requires_grad_(False)
        text_config = self.model.config.text_config
        if text_config.vocab_size != _CLIP_VOCAB:
            raise ValueError(
                f"reward 'pickscore': the model in {folder} has a {text_config.vocab_size}-token vocabulary; "
                f"this reward tokenises with CLIP's BPE ({_CLIP_VOCAB} tokens)"
            )
        self.tokenizer = SimpleTokenizer(context_length=text_config.max_position_embeddings)
        self.size = self.model.config.vision_config.image_size
        self.mean, self.std = OPENAI_MEAN, OPENAI_STD
        processor = folder / "preprocessor_config.json"
        if processor.is_file():
            config = json.loads(processor.read_text(encoding="utf-8"))
            self.mean, self.std = config.get("image_mean", self.mean), config.get("image_std", self.std)
        self.version = f"1:{fingerprint(folder)}"

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        pixels = clip_pixels(images, self.size, self.mean, self.std).to(self.dtype)
        image = _features(self.model.get_image_features(pixel_values=pixels)).float()
        unique = list(dict.fromkeys(prompts))
        tokens = self.tokenizer(unique).to(self.device)
        text = _features(self.model.get_text_features(input_ids=tokens, attention_mask=tokens != 0)).float()
        index = torch.tensor([unique.index(p) for p in prompts], device=self.device)
        image = torch.nn.functional.normalize(image, dim=-1)
        text = torch.nn.functional.normalize(text[index], dim=-1)
        return self.model.logit_scale.exp().float() * (image * text).sum(dim=-1)


def _lookups(options: Options) -> list[WeightsLookup]:
    return [
        WeightsLookup(
            "pickscore",
            "the PickScore model folder (transformers format)",
            "path",
            options.path("path"),
            ("pickscore",),
            inside="config.json",
        )
    ]


def _build(options: Options, device: torch.device) -> Reward:
    folder = _lookups(options)[0].require()
    return PickScore(folder, device, dtype_option(options), options.integer("batch_size", None))


register_reward(
    RewardEntry(
        "pickscore",
        "1",
        "PickScore (transformers CLIP folder); options path, dtype",
        build=_build,
        options=("path", "dtype"),
        needs_weights=True,
        weights=_lookups,
    )
)
