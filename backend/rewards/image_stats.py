"""Weight-free image statistics: JPEG (in)compressibility (DDPO), brightness, a target colour,
colourfulness (Hasler & Süsstrunk 2003) and sharpness (variance of the Laplacian)."""

from __future__ import annotations

import io

import torch
import torch.nn.functional as F

from .base import Reward
from .options import Options
from .registry import RewardEntry, register_reward

# Rec. 709 luma: perceived brightness, not the plain channel mean.
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


class JpegSize(Reward):
    """JPEG size in kB through Pillow, as DDPO scores it: + for incompressibility, − for compressibility."""

    default_batch_size = 256

    def __init__(self, name: str, sign: float, quality: int, batch_size: int | None = None):
        self.name, self.sign, self.quality = name, sign, quality
        self.version = f"1:q{quality}"
        super().__init__("cpu", batch_size)

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        from PIL import Image

        pixels = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        sizes = []
        for array in pixels:
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="JPEG", quality=self.quality)
            sizes.append(buffer.tell() / 1000.0)
        return self.sign * torch.tensor(sizes)


class Brightness(Reward):
    """Mean luma in 0..1; with a target, minus the distance to it."""

    name = "brightness"

    def __init__(self, device: torch.device, target: float | None, batch_size: int | None = None):
        self.target = target
        self.version = "1" if target is None else f"1:target={target:g}"
        super().__init__(device, batch_size)

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        luma = torch.einsum("bchw,c->b", images.clamp(0, 1), _LUMA.to(images.device)) / images[0, 0].numel()
        return luma if self.target is None else -(luma - self.target).abs()


class ColourTarget(Reward):
    """Minus the mean per-pixel RGB distance to a target colour (0 when every pixel matches)."""

    name = "colour_target"

    def __init__(self, device: torch.device, target: tuple[float, float, float], batch_size: int | None = None):
        self.target = torch.tensor(target)
        self.version = "1:target=" + ",".join(f"{c:.3f}" for c in target)
        super().__init__(device, batch_size)

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        distance = (images.clamp(0, 1) - self.target.to(images.device)[None, :, None, None]).norm(dim=1)
        return -distance.flatten(1).mean(dim=1)


class Colourfulness(Reward):
    """Hasler–Süsstrunk M on 0..255 pixels: about 0 for grey, above 100 for extremely colourful."""

    name = "colourfulness"

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        r, g, b = (images.clamp(0, 1) * 255).flatten(2).unbind(dim=1)
        rg, yb = r - g, 0.5 * (r + g) - b
        spread = (rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False)).sqrt()
        offset = (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
        return spread + 0.3 * offset


class Sharpness(Reward):
    """Variance of the Laplacian on 0..255 pixels (OpenCV's usual blur test), averaged over R, G, B:
    per channel rather than on grey, so an edge between two colours of equal brightness counts."""

    name = "sharpness"

    def _score_batch(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        channels = (images.clamp(0, 1) * 255).flatten(0, 1)[:, None]
        edges = F.conv2d(channels, _LAPLACIAN.to(images.device)[None, None])
        return edges.flatten(1).var(dim=1, unbiased=False).reshape(images.shape[0], 3).mean(dim=1)


def _jpeg(name: str, sign: float, options: Options) -> Reward:
    quality = options.integer("quality", 95)
    if quality > 100:
        raise ValueError(f"reward {name!r}: option quality must be 1..100, got {quality}")
    return JpegSize(name, sign, quality, options.integer("batch_size", None))


def _brightness(options: Options, device: torch.device) -> Reward:
    target = options.number("target", None)
    if target is not None and not 0.0 <= target <= 1.0:
        raise ValueError(f"reward 'brightness': option target must be in 0..1, got {target}")
    return Brightness(device, target, options.integer("batch_size", None))


def _colour_target(options: Options, device: torch.device) -> Reward:
    options.require("target", "0.9,0.1,0.1")
    return ColourTarget(device, options.rgb("target"), options.integer("batch_size", None))


for _entry in (
    RewardEntry(
        "jpeg_compressibility",
        "1",
        "minus JPEG size in kB (DDPO); option quality (default 95)",
        lambda options, device: _jpeg("jpeg_compressibility", -1.0, options),
        options=("quality",),
    ),
    RewardEntry(
        "jpeg_incompressibility",
        "1",
        "JPEG size in kB (DDPO); option quality (default 95)",
        lambda options, device: _jpeg("jpeg_incompressibility", 1.0, options),
        options=("quality",),
    ),
    RewardEntry(
        "brightness",
        "1",
        "mean luma 0..1; option target (0..1) scores closeness to it instead",
        _brightness,
        options=("target",),
    ),
    RewardEntry(
        "colour_target",
        "1",
        "minus mean RGB distance to option target (r,g,b | #rrggbb | colour name)",
        _colour_target,
        options=("target",),
    ),
    RewardEntry(
        "colourfulness",
        "1",
        "Hasler–Süsstrunk colourfulness",
        lambda options, device: Colourfulness(device, options.integer("batch_size", None)),
    ),
    RewardEntry(
        "sharpness",
        "1",
        "variance of the Laplacian per channel (blurred images score lower)",
        lambda options, device: Sharpness(device, options.integer("batch_size", None)),
    ),
):
    register_reward(_entry)
