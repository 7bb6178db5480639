"""`ngrpo sample`: images from a model, one per prompt × seed, saved as one grid."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from .. import solvers
from ..models.registry import load_model, model_names


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("sample", help="sample images from a model into a grid PNG")
    parser.add_argument(
        "--model",
        default="tiny",
        help=f"{', '.join(model_names())}, name:path, or an SD3/FLUX diffusers folder or .safetensors file",
    )
    parser.add_argument("--resolution", type=int, help="image size in pixels (default: the model's)")
    parser.add_argument("--guidance", type=float, help="SD3 CFG scale / FLUX guidance (default: the model's)")
    parser.add_argument("--prompt", action="append", required=True, help="a prompt (repeat for several)")
    parser.add_argument("--seed", type=int, action="append", help="a seed (repeat for several; default 0)")
    parser.add_argument("--solver", choices=solvers.SOLVERS, help="ODE solver (default: the model's)")
    parser.add_argument("--steps", type=int, help="solver steps (default: the model's)")
    parser.add_argument("--shift", type=float, help="time shift of the σ schedule (default: the model's)")
    parser.add_argument("--lora", type=Path, help="a LoRA file exported by ngrpo to apply")
    parser.add_argument("--lora-strength", type=float, default=1.0)
    parser.add_argument("--scale", type=int, default=4, help="enlarge the grid's pixels this many times")
    parser.add_argument("--out", type=Path, default=Path("grid.png"), help="output PNG (default grid.png)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..sampling import generate, grid, to_pil

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    if args.scale < 1:
        raise ValueError(f"--scale must be at least 1, got {args.scale}")
    if args.out.suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {args.out}")
    seeds = args.seed or [0]
    model = load_model(args.model)
    if args.guidance is not None:
        model.guidance = args.guidance
    if args.lora is not None:
        from ..training.lora import apply_lora_file

        apply_lora_file(model, args.lora, strength=args.lora_strength)
    pairs = [(p, s) for p in args.prompt for s in seeds]
    steps = args.steps or model.defaults.steps
    with tqdm(total=steps, desc="sampling", unit="step") as bar:
        images = generate(
            model,
            [p for p, _ in pairs],
            [s for _, s in pairs],
            solver=args.solver,
            steps=steps,
            shift=args.shift,
            resolution=args.resolution,
            callback=lambda _: bar.update(1),
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    to_pil(grid(images, columns=len(seeds)), scale=args.scale).save(args.out)
    print(f"wrote {args.out} ({len(args.prompt)} prompt(s) × {len(seeds)} seed(s))")
    return 0
