"""The one interface every reward implements: images [B, 3, H, W] in 0..1 and prompts → scores [B].

Higher is better. A reward's `version` changes whenever its scores change meaning (other weights,
other options that rescale them): scores of different versions are not comparable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class RewardError(ValueError):
    """A reward produced unusable scores, or was asked to score unusable input."""


class Reward(ABC):
    name: str = "reward"
    version: str = "1"
    needs_weights: bool = False
    default_batch_size: int = 64

    def __init__(self, device: str | torch.device = "cpu", batch_size: int | None = None):
        self.device = torch.device(device)
        self.batch_size = int(batch_size or self.default_batch_size)
        if self.batch_size < 1:
            raise ValueError(f"reward {self.name!r}: batch_size must be at least 1, got {self.batch_size}")

    @property
    def label(self) -> str:
        """How error messages name this reward."""
        return f"reward {self.name!r}"

    @abstractmethod
    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Scores [b] for at most `batch_size` images already on `self.device`."""

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Float32 scores [B] on the images' device, computed `batch_size` images at a time."""
        check_inputs(images, prompts)
        if not prompts:
            return torch.empty(0, device=images.device)
        # no_grad rather than inference_mode: the trainer multiplies these scores into tensors
        # that require grad, and inference tensors cannot be saved for backward.
        with torch.no_grad():
            chunks = []
            for start in range(0, len(prompts), self.batch_size):
                stop = start + self.batch_size
                batch = images[start:stop].to(self.device, torch.float32)
                scores = self._score_batch(batch, list(prompts[start:stop]))
                chunks.append(check_scores(scores, batch.shape[0], self.label).to(images.device))
        return torch.cat(chunks)

    __call__ = score

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, device={str(self.device)!r})"


def check_inputs(images: torch.Tensor, prompts: list[str]) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise RewardError(f"expected images as a float tensor [B, 3, H, W] in 0..1, got {shape}")
    if isinstance(prompts, str):
        raise RewardError("prompts must be a list of strings, one per image, not a single string")
    if len(prompts) != images.shape[0]:
        raise RewardError(f"got {images.shape[0]} images but {len(prompts)} prompts; pass one prompt per image")


def check_scores(scores: object, count: int, label: str) -> torch.Tensor:
    """`scores` as a finite float32 tensor [count], or a RewardError that names the reward."""
    if not isinstance(scores, torch.Tensor):
        try:
            scores = torch.as_tensor(scores, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise RewardError(
                f"{label} returned a {type(scores).__name__}; it must return one number per image "
                "(a float tensor, array or list of length B)"
            ) from None
    if scores.ndim != 1 or scores.shape[0] != count:
        raise RewardError(
            f"{label} returned scores of shape {tuple(scores.shape)} for {count} images; "
            f"it must return one number per image, shape ({count},)"
        )
    if scores.dtype == torch.bool or scores.is_complex():
        raise RewardError(f"{label} returned {scores.dtype} scores; it must return real numbers")
    scores = scores.detach().float()
    bad = (~torch.isfinite(scores)).nonzero().flatten().tolist()
    if bad:
        raise RewardError(
            f"{label} returned non-finite scores {[scores[i].item() for i in bad[:5]]} for image(s) {bad[:5]}; "
            "refusing to train on NaN or infinite rewards"
        )
    return scores
