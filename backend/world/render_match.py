"""An independent gold metric for the shapes world: fit every image with the world's own renderer.

The checker (checker.py) segments an image by thresholding its distance from the border colour,
keeps the largest region and reads shape kind from two hand-set bounding-box features. A policy
trained on its scores can exploit exactly those steps (a blob whose top half is thin reads as a
triangle; streaks outside the largest region cost nothing). This metric shares none of them: it
least-squares fits the whole image with renderings of every shape world image — each shape kind
at each quadrant on a grid of the renderer's own jitter and size range, in every colour pair of
the palette — and reads the attributes off the nearest rendering. Only the world's definition
(renderer and palette) is common to both, which is what "correct" means here.

- `match accuracy`: fraction of the four attributes of the nearest rendering that the prompt asks
  for (a nearest-template classifier; rendered images score 1).
- `render fit`: exp(−RMSE / scale) of the best rendering *of the prompt itself* — image quality
  as distance to what the world would draw: blobs, smears, grid textures and streaks all cost.
"""

from __future__ import annotations

import functools
import math

import torch

from .shapes import (
    _CENTRE_JITTER,
    _QUADRANT_CENTRE,
    _RADIUS_RANGE,
    ATTRIBUTES,
    COLOURS,
    POSITIONS,
    SHAPES,
    ShapeSpec,
    _shape_coverage,
)

# Grid over the renderer's random jitter and radius: 5 × 5 centres × 4 radii per shape and quadrant
# (1,200 masks): fine enough that a rendered image's nearest template is its own spec.
_JITTER_STEPS = (-1.0, -0.5, 0.0, 0.5, 1.0)
_RADIUS_STEPS = 4
# RMSE (per pixel and channel, 0..1 images) at which the fit score falls to 1/e. Rendered images
# with off-grid jitter sit near 0.02 (fit ≈ 0.9); see tests/backend/world/test_render_match.py.
_FIT_SCALE = 0.2

_COLOUR_NAMES = list(COLOURS)
# (foreground, background) pairs the world allows: the two colours differ.
_PAIRS = [(fg, bg) for fg in range(len(_COLOUR_NAMES)) for bg in range(len(_COLOUR_NAMES)) if fg != bg]


@functools.lru_cache(maxsize=4)
def _templates(size: int) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    """Coverage masks [M, size·size] and the (shape, position) each one draws."""
    masks, labels = [], []
    lo, hi = _RADIUS_RANGE
    radii = [(lo + (hi - lo) * i / (_RADIUS_STEPS - 1)) * size for i in range(_RADIUS_STEPS)]
    for shape in SHAPES:
        for position in POSITIONS:
            fx, fy = _QUADRANT_CENTRE[position]
            centres = [
                ((fx + jx * _CENTRE_JITTER) * size, (fy + jy * _CENTRE_JITTER) * size)
                for jx in _JITTER_STEPS
                for jy in _JITTER_STEPS
            ]
            cx = torch.tensor([c[0] for c in centres for _ in radii])
            cy = torch.tensor([c[1] for c in centres for _ in radii])
            radius = torch.tensor([r for _ in centres for r in radii])
            masks.append(_shape_coverage(shape, cx, cy, radius, size).flatten(1))
            labels += [(shape, position)] * len(cx)
    return torch.cat(masks).double(), labels


def _squared_errors(images: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors [N, M, P] between each image and each template mask m painted in
    colour pair p: ‖I − bg − (fg − bg)·c_m‖², expanded so that no [N, M, P, pixels] tensor exists."""
    masks, _ = _templates(images.shape[-1])
    flat = images.double().flatten(2)  # [N, 3, D]
    palette = torch.tensor([COLOURS[name] for name in _COLOUR_NAMES], dtype=torch.float64)
    fg = palette[[p[0] for p in _PAIRS]]  # [P, 3]
    bg = palette[[p[1] for p in _PAIRS]]
    diff = fg - bg
    pixels = flat.shape[-1]
    inner = torch.einsum("ncd,md->ncm", flat, masks)  # ⟨I_c, mask_m⟩
    sums = flat.sum(-1)  # [N, 3]
    m1, m2 = masks.sum(-1), masks.pow(2).sum(-1)  # [M]
    cross = sums @ bg.T  # Σ_c bg_c·ΣI_c → [N, P]
    mixed = torch.einsum("ncm,pc->nmp", inner, diff)  # Σ_c (fg − bg)_c·⟨I_c, mask⟩
    template_norm = (
        (bg.pow(2).sum(-1) * pixels)[None, :]
        + 2 * m1[:, None] * (bg * diff).sum(-1)[None, :]
        + m2[:, None] * diff.pow(2).sum(-1)[None, :]
    )  # [M, P]
    image_norm = flat.pow(2).sum((1, 2))  # [N]
    sse = image_norm[:, None, None] - 2 * (cross[:, None, :] + mixed) + template_norm[None]
    return sse.clamp(min=0.0)


def nearest_renderings(images: torch.Tensor) -> list[dict[str, str]]:
    """The attributes of the rendering nearest to each image [N, 3, H, W] (0..1)."""
    sse = _squared_errors(images)
    _, labels = _templates(images.shape[-1])
    best = sse.flatten(1).argmin(1)
    found = []
    for index in best.tolist():
        m, p = divmod(index, len(_PAIRS))
        shape, position = labels[m]
        fg, bg = _PAIRS[p]
        found.append(
            {"shape": shape, "colour": _COLOUR_NAMES[fg], "background": _COLOUR_NAMES[bg], "position": position}
        )
    return found


def match_accuracy(images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """Fraction of the prompt's attributes that the nearest rendering has, per image → [N]."""
    specs = [ShapeSpec.parse(p) for p in prompts]
    found = nearest_renderings(images)
    return torch.tensor(
        [
            sum(f[name] == getattr(s, name) for name in ATTRIBUTES) / len(ATTRIBUTES)
            for f, s in zip(found, specs, strict=True)
        ]
    )


def render_fit(images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """exp(−RMSE / scale) against the best rendering of each image's own prompt → [N] in (0, 1]."""
    specs = [ShapeSpec.parse(p) for p in prompts]
    sse = _squared_errors(images)
    _, labels = _templates(images.shape[-1])
    scores = []
    for row, spec in enumerate(specs):
        masks = [m for m, label in enumerate(labels) if label == (spec.shape, spec.position)]
        pair = _PAIRS.index((_COLOUR_NAMES.index(spec.colour), _COLOUR_NAMES.index(spec.background)))
        best = sse[row, masks, pair].min().item()
        rmse = math.sqrt(best / images[row].numel())
        scores.append(math.exp(-rmse / _FIT_SCALE))
    return torch.tensor(scores)
