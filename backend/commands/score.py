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


def run(args: argparse.Namespace) -> int:
    from ..actions import ScoreRequest, score_images

    result = score_images(ScoreRequest(args.image, args.prompt, args.reward, device=args.device))
    results = [
        {"image": str(row.image), "prompt": row.prompt, "scores": row.scores, "total": row.total}
        for row in result.images
    ]
    if args.json:
        print(json.dumps({"rewards": result.rewards, "images": results}, indent=2))
        return 0
    _print_table(results, result)
    return 0


def _print_table(results: list[dict], result) -> None:
    columns = [*result.keys, "total"]
    width = max(len(Path(r["image"]).name) for r in results)
    widths = [max(10, len(c)) for c in columns]
    print("  ".join([f"{'image':<{width}}", *(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))]))
    for row in results:
        values = [*row["scores"].values(), row["total"]]
        cells = (f"{v:>{w}.4g}" for v, w in zip(values, widths, strict=True))
        print("  ".join([f"{Path(row['image']).name:<{width}}", *cells]))
    versions = {reward["key"]: reward["version"] for reward in result.rewards}
    weights = ", ".join(f"{key} ×{w:g} (v{versions[key]})" for key, w in result.weights.items())
    print(f"total = weighted sum of raw scores: {weights}")
