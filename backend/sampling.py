"""Text → images with any registered model and solver (the sampling CLI and every front end)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import solvers
from .models.base import Conditioning, FlowModel


def velocity_fn(model: FlowModel, cond: Conditioning) -> solvers.VelocityFn:
    return lambda x, sigma: model.velocity(x, sigma, cond)


@torch.no_grad()
def generate(
    model: FlowModel,
    prompts: list[str],
    seeds: list[int],
    solver: str | None = None,
    steps: int | None = None,
    shift: float | None = None,
    resolution: int | None = None,
    callback: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """One image per (prompt, seed) pair, float [B, 3, H, W] in 0..1. Same inputs, same images."""
    if len(prompts) != len(seeds):
        raise ValueError(f"got {len(prompts)} prompts but {len(seeds)} seeds; pass one seed per prompt")
    if not prompts:
        raise ValueError("nothing to sample: pass at least one prompt")
    defaults = model.defaults
    solver = solver or defaults.solver
    solvers.check_solver(solver)
    sigmas = model.sigmas(steps or defaults.steps, shift, resolution)
    cond = model.encode_prompts(prompts)
    noise = model.initial_noise(seeds, resolution)
    latents = solvers.solve(velocity_fn(model, cond), noise, sigmas, solver, callback=callback).sample
    return model.decode(latents)


def grid(images: torch.Tensor, columns: int) -> torch.Tensor:
    """Images [B, 3, H, W] → one image [3, rows·H, columns·W], row-major, padded with black."""
    count, channels, height, width = images.shape
    rows = -(-count // columns)
    canvas = torch.zeros(channels, rows * height, columns * width, dtype=images.dtype)
    for index in range(count):
        r, c = divmod(index, columns)
        canvas[:, r * height : (r + 1) * height, c * width : (c + 1) * width] = images[index]
    return canvas


def to_pil(image: torch.Tensor, scale: int = 1):
    """[3, H, W] in 0..1 → PIL image, optionally enlarged with nearest-neighbour pixels."""
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    picture = Image.fromarray(array)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return picture
