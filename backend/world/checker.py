"""A pixel-level checker for the shapes world: does an image show what its prompt asks for?

This is the embedded default's GenEval-like verifiable reward and the model card's accuracy
metric. It segments the image itself (no model): background colour from the border, the shape as
the largest connected region that differs from it, then colour, position and kind from that region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .shapes import ATTRIBUTES, COLOURS, ShapeSpec

_PALETTE_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[name] for name in _PALETTE_NAMES], dtype=np.float32)
_FOREGROUND_DISTANCE = 0.25  # RGB distance from the background that counts as "shape"
_MIN_SHAPE_PIXELS = 6
_SOFT_COLOUR_SCALE = 0.08  # RGB distance over which the soft colour score falls off
# Mean RGB distance from the background colour, away from the shape, over which cleanliness
# falls off: rendered images have 0; the base tiny model about 0.007; streaks and grid textures
# that a reward blind to the background lets GRPO introduce, 0.05 and more.
_CLEAN_SCALE = 0.05
_SHAPE_MARGIN = 2  # pixels around the shape left out of the cleanliness measure (anti-aliasing)
# Shape kind from two features of the region's bounding box: an upward triangle has far less mass
# in its top half than its bottom half; a square fills its box's corners, a disk does not.
_TRIANGLE_TOP_RATIO = 0.65
_SQUARE_CORNER_FILL = 0.7
_SOFT_FEATURE_SCALE = 0.08


@dataclass(frozen=True)
class CheckResult:
    """Per-attribute hard matches and soft scores (both in [0, 1]) for one image, and how clean
    the background is away from the shape (1 = plain, as the prompt asks)."""

    correct: dict[str, bool]
    soft: dict[str, float]
    found: dict[str, str]
    cleanliness: float = 1.0

    @property
    def accuracy(self) -> float:
        """Fraction of attributes that match."""
        return sum(self.correct.values()) / len(self.correct)

    @property
    def all_correct(self) -> bool:
        return all(self.correct.values())

    @property
    def soft_score(self) -> float:
        return sum(self.soft.values()) / len(self.soft)


def _soft_palette(colour: np.ndarray, target: str) -> tuple[str, float]:
    distances = np.linalg.norm(_PALETTE - colour[None], axis=1)
    logits = -distances / _SOFT_COLOUR_SCALE
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    nearest = _PALETTE_NAMES[int(distances.argmin())]
    return nearest, float(probs[_PALETTE_NAMES.index(target)])


def _sigmoid(value: float) -> float:
    return float(1.0 / (1.0 + np.exp(-value)))


def _classify_shape(box: np.ndarray) -> tuple[str, dict[str, float]]:
    """Kind of the shape whose mask fills this bounding box, and soft probabilities per kind."""
    height, width = box.shape
    half = height / 2.0
    rows = box.sum(axis=1).astype(np.float32)
    weights = np.clip(half - np.arange(height), 0.0, 1.0)  # rows in the top half, fractional
    top = float((rows * weights).sum())
    bottom = float(rows.sum()) - top
    top_ratio = top / max(bottom, 1e-6)
    ch, cw = max(1, round(height * 0.25)), max(1, round(width * 0.25))
    corners = [box[:ch, :cw], box[:ch, -cw:], box[-ch:, :cw], box[-ch:, -cw:]]
    corner_fill = float(np.mean([c.mean() for c in corners]))
    p_triangle = _sigmoid((_TRIANGLE_TOP_RATIO - top_ratio) / _SOFT_FEATURE_SCALE)
    p_square = _sigmoid((corner_fill - _SQUARE_CORNER_FILL) / _SOFT_FEATURE_SCALE)
    soft = {
        "triangle": p_triangle,
        "square": (1 - p_triangle) * p_square,
        "circle": (1 - p_triangle) * (1 - p_square),
    }
    return max(soft, key=soft.get), soft


def _largest_region(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, index=range(1, count + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def check_image(image: np.ndarray, spec: ShapeSpec) -> CheckResult:
    """Check one image [3, H, W] (float 0..1) against a spec."""
    pixels = np.transpose(np.clip(image, 0.0, 1.0), (1, 2, 0)).astype(np.float32)
    height, width, _ = pixels.shape
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(border, axis=0)
    found_bg, soft_bg = _soft_palette(background, spec.background)

    distance = np.linalg.norm(pixels - background[None, None], axis=2)
    mask = _largest_region(distance > _FOREGROUND_DISTANCE)
    away = ~ndimage.binary_dilation(mask, iterations=_SHAPE_MARGIN)
    cleanliness = float(np.exp(-distance[away].mean() / _CLEAN_SCALE)) if away.any() else 0.0
    found = {"background": found_bg}
    correct = {"background": found_bg == spec.background}
    soft = {"background": soft_bg}
    if mask.sum() < _MIN_SHAPE_PIXELS:
        found.update(shape="none", colour="none", position="none")
        correct.update(shape=False, colour=False, position=False)
        soft.update(shape=0.0, colour=0.0, position=0.0)
        return CheckResult(_ordered(correct), _ordered(soft), _ordered(found), cleanliness)

    # The core (well inside the shape) avoids anti-aliased edge pixels blending with background.
    core = mask & (distance > np.percentile(distance[mask], 50))
    colour = np.median(pixels[core if core.sum() >= 3 else mask], axis=0)
    found["colour"], soft["colour"] = _soft_palette(colour, spec.colour)
    correct["colour"] = found["colour"] == spec.colour

    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean() / height, xs.mean() / width
    position = f"{'top' if cy < 0.5 else 'bottom'} {'left' if cx < 0.5 else 'right'}"
    found["position"] = position
    correct["position"] = position == spec.position
    want_y = 0.25 if spec.position.startswith("top") else 0.75
    want_x = 0.25 if spec.position.endswith("left") else 0.75
    soft["position"] = float(np.exp(-(((cy - want_y) ** 2 + (cx - want_x) ** 2) / 0.02)))

    kind, soft_kinds = _classify_shape(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    found["shape"] = kind
    correct["shape"] = kind == spec.shape
    soft["shape"] = soft_kinds[spec.shape]
    return CheckResult(_ordered(correct), _ordered(soft), _ordered(found), cleanliness)


def _ordered(values: dict) -> dict:
    return {name: values[name] for name in ATTRIBUTES}


def check_batch(images: torch.Tensor, prompts: list[str]) -> list[CheckResult]:
    """Check a batch of images [B, 3, H, W] in 0..1 against their prompts."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W], got shape {tuple(images.shape)}")
    if len(prompts) != images.shape[0]:
        raise ValueError(f"got {images.shape[0]} images but {len(prompts)} prompts")
    array = images.detach().float().cpu().numpy()
    return [check_image(array[i], ShapeSpec.parse(p)) for i, p in enumerate(prompts)]


def attribute_accuracy(results: list[CheckResult]) -> dict[str, float]:
    """Mean accuracy per attribute, plus 'mean' (over attributes) and 'all' (every attribute)."""
    summary = {name: float(np.mean([r.correct[name] for r in results])) for name in ATTRIBUTES}
    summary["mean"] = float(np.mean([r.accuracy for r in results]))
    summary["all"] = float(np.mean([r.all_correct for r in results]))
    summary["cleanliness"] = float(np.mean([r.cleanliness for r in results]))
    return summary
