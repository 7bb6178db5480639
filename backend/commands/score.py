"""`ngrpo score`: score image files with one or more rewards, each alone and as a weighted total."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("score", help="score image files with rewards")
    parser.add_argument(
        "--reward",
        action="append",
        required=True,
        metavar="NAME[:WEIGHT] [key=value ...]",
        help='a reward (repeat for several), e.g. shapes_fidelity, sharpness:0.5, "clip path=/models/clip.safetensors"',
    )
    parser.add_argument("--image", type=Path, action="append", required=True, help="an image file (repeat)")
    parser.add_argument(
        "--prompt", action="append", required=True, help="one prompt for all images, or one per image (repeat)"
    )
    parser.add_argument("--device", default="cpu", help="where learned rewards run (default cpu)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    parser.set_defaults(run=run)


def load_image(path: Path):
    """An image file → float tensor [3, H, W] in 0..1."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        picture = Image.open(path).convert("RGB")
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not an image Pillow can read (use PNG or JPEG)") from None
    return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float() / 255.0


def _prompts(args: argparse.Namespace) -> list[str]:
    if len(args.prompt) == 1:
        return args.prompt * len(args.image)
    if len(args.prompt) != len(args.image):
        raise ValueError(
            f"got {len(args.image)} --image but {len(args.prompt)} --prompt; pass one prompt for all images "
            "or one per image, in the same order"
        )
    return args.prompt


def run(args: argparse.Namespace) -> int:
    import torch

    from ..rewards import RewardSet, RewardSpec

    prompts = _prompts(args)
    specs = [RewardSpec.parse(text) for text in args.reward]
    images = [load_image(path) for path in args.image]
    rewards = RewardSet.from_specs(specs, device=args.device)
    # Images of different sizes cannot share a batch tensor: score them one at a time.
    rows = [rewards.score(image[None], [prompt]) for image, prompt in zip(images, prompts, strict=True)]
    raw = {key: torch.cat([row[key] for row in rows]) for key in rewards.names}
    total = rewards.weighted_sum(raw)
    results = [
        {
            "image": str(path),
            "prompt": prompt,
            "scores": {key: raw[key][i].item() for key in rewards.names},
            "total": total[i].item(),
        }
        for i, (path, prompt) in enumerate(zip(args.image, prompts, strict=True))
    ]
    if args.json:
        described = [
            {"key": key, **spec.to_dict(), "version": rewards.versions[key]}
            for key, spec in zip(rewards.names, rewards.specs, strict=True)
        ]
        print(json.dumps({"rewards": described, "images": results}, indent=2))
        return 0
    _print_table(results, rewards)
    return 0


def _print_table(results: list[dict], rewards) -> None:
    columns = [*rewards.names, "total"]
    width = max(len(Path(r["image"]).name) for r in results)
    widths = [max(10, len(c)) for c in columns]
    print("  ".join([f"{'image':<{width}}", *(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))]))
    for row in results:
        values = [*row["scores"].values(), row["total"]]
        cells = (f"{v:>{w}.4g}" for v, w in zip(values, widths, strict=True))
        print("  ".join([f"{Path(row['image']).name:<{width}}", *cells]))
    weights = ", ".join(f"{key} ×{w:g} (v{rewards.versions[key]})" for key, w in rewards.weights.items())
    print(f"total = weighted sum of raw scores: {weights}")
