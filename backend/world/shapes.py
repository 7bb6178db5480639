"""The shapes world: structured prompts, a deterministic renderer and fixed prompt splits.

Every image is one filled shape of one colour on a plain background of another colour, in one
quadrant of a square canvas. Small seeded jitter of position and size gives each prompt a
distribution of images, so a generative model has something to learn and GRPO something to rank.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGE_SIZE = 32
SUPERSAMPLE = 4

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.13, 0.13),
    "green": (0.13, 0.70, 0.25),
    "blue": (0.15, 0.30, 0.90),
    "yellow": (0.95, 0.85, 0.15),
    "purple": (0.55, 0.20, 0.75),
    "white": (0.95, 0.95, 0.95),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")
ATTRIBUTES = ("shape", "colour", "background", "position")

# Canvas fractions: quadrant centres sit at 1/4 and 3/4 of the side.
_QUADRANT_CENTRE = {
    "top left": (0.25, 0.25),
    "top right": (0.75, 0.25),
    "bottom left": (0.25, 0.75),
    "bottom right": (0.75, 0.75),
}
_CENTRE_JITTER = 0.045  # fraction of the side, so shapes never leave their quadrant
_RADIUS_RANGE = (0.14, 0.19)  # half-extent of the shape as a fraction of the side

_PROMPT_RE = re.compile(
    r"^an? (?P<colour>\w+) (?P<shape>\w+) on an? (?P<background>\w+) background, "
    r"(?P<position>(?:top|bottom) (?:left|right))$"
)

HELD_OUT_COUNT = 60
_SPLIT_SEED = 20251120


@dataclass(frozen=True)
class ShapeSpec:
    """What a prompt asks for."""

    shape: str
    colour: str
    background: str
    position: str

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; choose one of {SHAPES}")
        for field_name in ("colour", "background"):
            value = getattr(self, field_name)
            if value not in COLOURS:
                raise ValueError(f"unknown {field_name} {value!r}; choose one of {tuple(COLOURS)}")
        if self.position not in POSITIONS:
            raise ValueError(f"unknown position {self.position!r}; choose one of {POSITIONS}")

    @property
    def prompt(self) -> str:
        return f"a {self.colour} {self.shape} on a {self.background} background, {self.position}"

    @classmethod
    def parse(cls, prompt: str) -> ShapeSpec:
        match = _PROMPT_RE.match(prompt.strip().lower())
        if match is None:
            raise ValueError(
                f"not a shapes-world prompt: {prompt!r}; expected e.g. 'a red circle on a blue background, top left'"
            )
        return cls(**match.groupdict())


def all_specs() -> list[ShapeSpec]:
    """Every valid combination (shape colour differs from the background): 360 prompts."""
    return [
        ShapeSpec(shape, colour, background, position)
        for shape in SHAPES
        for colour in COLOURS
        for background in COLOURS
        if background != colour
        for position in POSITIONS
    ]


def prompt_splits() -> tuple[list[str], list[str]]:
    """Fixed train / held-out prompt lists (the held-out prompts are never trained on)."""
    prompts = [spec.prompt for spec in all_specs()]
    random.Random(_SPLIT_SEED).shuffle(prompts)
    return sorted(prompts[HELD_OUT_COUNT:]), sorted(prompts[:HELD_OUT_COUNT])


def train_prompts() -> list[str]:
    return prompt_splits()[0]


def test_prompts() -> list[str]:
    return prompt_splits()[1]


def vocabulary() -> list[str]:
    """Every word a shapes-world prompt can use, in a fixed order."""
    words = ["a", "an", "on", "background", *COLOURS, *SHAPES]
    words += ["top", "bottom", "left", "right"]
    return words


def _shape_coverage(shape: str, cx: torch.Tensor, cy: torch.Tensor, radius: torch.Tensor, size: int) -> torch.Tensor:
    """Anti-aliased coverage in [0, 1] of shapes centred at (cx, cy) (pixels), one per batch row."""
    fine = size * SUPERSAMPLE
    coords = (torch.arange(fine, dtype=torch.float32) + 0.5) / SUPERSAMPLE
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    r = radius[:, None, None]
    if shape == "circle":
        inside = dx**2 + dy**2 <= r**2
    elif shape == "square":
        inside = (dx.abs() <= r * 0.9) & (dy.abs() <= r * 0.9)
    else:  # upward triangle with its base at +r and apex at -r
        half_width = (dy + r) / 2.0 * (2.0 / 1.7)  # widens by ~1.18 px per px downwards
        inside = (dy >= -r) & (dy <= r) & (dx.abs() <= half_width * 0.9)
    coverage = inside.float()[:, None]
    return F.avg_pool2d(coverage, SUPERSAMPLE)[:, 0]


def render(specs: list[ShapeSpec], seeds: list[int] | None = None, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Render specs to float images [B, 3, size, size] in 0..1; same spec and seed, same image."""
    if seeds is None:
        seeds = list(range(len(specs)))
    if len(seeds) != len(specs):
        raise ValueError(f"got {len(specs)} specs but {len(seeds)} seeds")
    images = torch.empty(len(specs), 3, size, size)
    for index, (spec, seed) in enumerate(zip(specs, seeds, strict=True)):
        gen = torch.Generator().manual_seed(int(seed))
        jitter = (torch.rand(2, generator=gen) * 2 - 1) * _CENTRE_JITTER
        lo, hi = _RADIUS_RANGE
        radius = (lo + (hi - lo) * torch.rand(1, generator=gen)) * size
        fx, fy = _QUADRANT_CENTRE[spec.position]
        cx = (fx + jitter[0:1]) * size
        cy = (fy + jitter[1:2]) * size
        cover = _shape_coverage(spec.shape, cx, cy, radius, size)[0]
        fg = torch.tensor(COLOURS[spec.colour])[:, None, None]
        bg = torch.tensor(COLOURS[spec.background])[:, None, None]
        images[index] = bg + (fg - bg) * cover[None]
    return images


def random_specs(count: int, rng: random.Random, prompts: list[str] | None = None) -> list[ShapeSpec]:
    """Draw specs uniformly from a prompt list (default: the training split)."""
    pool = prompts if prompts is not None else train_prompts()
    return [ShapeSpec.parse(rng.choice(pool)) for _ in range(count)]
