"""Scoring image files with one or more rewards, each alone and as a weighted total."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rewards import RewardSpec
from .errors import ActionError, action


@dataclass(frozen=True)
class ScoreRequest:
    images: list[Path]
    prompts: list[str]  # one for all images, or one per image in the same order
    rewards: list[str | RewardSpec]  # "name", "name:weight key=value ..." or specs
    device: str = "cpu"


@dataclass(frozen=True)
class ImageScore:
    image: Path
    prompt: str
    scores: dict[str, float]  # reward key → raw score
    total: float  # Σ weight × raw score


@dataclass(frozen=True)
class ScoreResult:
    keys: list[str]  # one per reward (a name, or name[options] when a name repeats)
    rewards: list[dict[str, Any]] = field(default_factory=list)  # each spec with its key and version
    weights: dict[str, float] = field(default_factory=dict)
    images: list[ImageScore] = field(default_factory=list)


def load_image(path: Path):
    """An image file → float tensor [3, H, W] in 0..1."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ActionError(f"no such image file: {path}")
    try:
        picture = Image.open(path).convert("RGB")
    except UnidentifiedImageError:
        raise ActionError(f"{path} is not an image Pillow can read (use PNG or JPEG)") from None
    return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float() / 255.0


@action
def score_images(request: ScoreRequest) -> ScoreResult:
    import torch

    from ..rewards import RewardSet

    if not request.images:
        raise ActionError("give at least one image to score")
    if not request.rewards:
        raise ActionError("give at least one reward (e.g. shapes_fidelity or sharpness:0.5)")
    prompts = list(request.prompts)
    if len(prompts) == 1:
        prompts = prompts * len(request.images)
    if len(prompts) != len(request.images):
        raise ActionError(
            f"got {len(request.images)} images but {len(request.prompts)} prompts; pass one prompt for all images "
            "or one per image, in the same order"
        )
    specs = [spec if isinstance(spec, RewardSpec) else RewardSpec.parse(spec) for spec in request.rewards]
    images = [load_image(path) for path in request.images]
    rewards = RewardSet.from_specs(specs, device=request.device)
    # Images of different sizes cannot share a batch tensor: score them one at a time.
    rows = [rewards.score(image[None], [prompt]) for image, prompt in zip(images, prompts, strict=True)]
    raw = {key: torch.cat([row[key] for row in rows]) for key in rewards.names}
    total = rewards.weighted_sum(raw)
    scored = [
        ImageScore(Path(path), prompt, {key: raw[key][i].item() for key in rewards.names}, total[i].item())
        for i, (path, prompt) in enumerate(zip(request.images, prompts, strict=True))
    ]
    described = [
        {"key": key, **spec.to_dict(), "version": rewards.versions[key]}
        for key, spec in zip(rewards.names, rewards.specs, strict=True)
    ]
    return ScoreResult(list(rewards.names), described, dict(rewards.weights), scored)
