"""The README picture: held-out prompts before and after a finished run, on the same initial noise.

    python bench/readme_figure.py --run RUN_FOLDER [--out docs/images/tiny_base_vs_aligned.png]
                                  [--json docs/images/tiny_base_vs_aligned.json] [--columns 6]

Samples every held-out prompt with `--seeds` fixed seeds (the evaluation's seeds) from the embedded
model and from it with the run's last LoRA, scores each image with the gold metric (the render
match: attribute accuracy of the nearest rendering, independent of the checker the rewards use),
and shows the columns picked by a fixed rule, so the picture is neither cherry-picked nor
arbitrary: the prompts whose mean gold score rose most (one column each, on the seed where it rose
most), then the prompt that fell most if any fell, then one that did not change. Each column is
labelled with its prompt, each image with its gold score, what the nearest rendering has where it
differs from the prompt, and the checker's background cleanliness.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from neighbor_grpo.backend.models.registry import load_model
from neighbor_grpo.backend.sampling import generate, to_pil
from neighbor_grpo.backend.training.checkpoint import LORA, latest_checkpoint
from neighbor_grpo.backend.training.evaluation import EVAL_SEED_BASE
from neighbor_grpo.backend.training.lora import apply_lora_file
from neighbor_grpo.backend.world import checker, render_match, shapes

_SCALE = 4  # 32 px → 128 px, nearest neighbour: every model pixel stays visible
_PAD = 12
_BATCH = 60


def sample_all(model, prompts: list[str], seeds: list[int], solver: str, steps: int) -> torch.Tensor:
    chunks = [
        generate(model, prompts[i : i + _BATCH], seeds[i : i + _BATCH], solver=solver, steps=steps)
        for i in range(0, len(prompts), _BATCH)
    ]
    return torch.cat(chunks)


def pick_columns(base: list[list[float]], aligned: list[list[float]], columns: int) -> list[tuple[int, int, str]]:
    """(prompt index, seed index, why) per column, from per-prompt, per-seed accuracies."""
    change = [sum(a) / len(a) - sum(b) / len(b) for a, b in zip(aligned, base, strict=True)]
    order = sorted(range(len(change)), key=lambda i: (-change[i], i))
    fell = [i for i in order if change[i] < 0]
    still = [i for i in order if change[i] == 0]
    rose = [i for i in order if change[i] > 0]
    tail = ([(fell[-1], "fell most")] if fell else []) + ([(still[0], "unchanged")] if still else [])
    chosen = [(i, "rose") for i in rose[: max(0, columns - len(tail))]] + tail
    picked = []
    for prompt, why in chosen:
        deltas = [a - b for a, b in zip(aligned[prompt], base[prompt], strict=True)]
        if why == "rose":
            seed = max(range(len(deltas)), key=lambda s: (deltas[s], -s))
        elif why == "fell most":
            seed = min(range(len(deltas)), key=lambda s: (deltas[s], s))
        else:
            seed = 0
        picked.append((prompt, seed, why))
    return picked


def score_images(images: torch.Tensor, prompts: list[str]) -> list[dict]:
    """Per image: gold score, the nearest rendering's attributes that differ from the prompt, and
    the checker's cleanliness."""
    gold = render_match.match_accuracy(images, prompts).tolist()
    found = render_match.nearest_renderings(images)
    clean = [r.cleanliness for r in checker.check_batch(images, prompts)]
    rows = []
    for prompt, score, seen, cleanliness in zip(prompts, gold, found, clean, strict=True):
        spec = shapes.ShapeSpec.parse(prompt)
        wrong = [seen[name] for name in shapes.ATTRIBUTES if seen[name] != getattr(spec, name)]
        rows.append({"gold": score, "wrong": wrong, "clean": cleanliness})
    return rows


def _label(score: dict) -> str:
    """Plain words: the default font has no arrows or check marks."""
    found = "as prompted" if not score["wrong"] else "drew " + ", ".join(score["wrong"])
    return f"gold {score['gold']:.2f}  clean {score['clean']:.2f}\n{found}"


def render(cells: list[dict], rows: list[str], title: str) -> Image.Image:
    font = ImageFont.load_default(size=15)
    bold = ImageFont.load_default(size=17)
    side = shapes.IMAGE_SIZE * _SCALE
    prompts = [textwrap.fill(cell["prompt"], width=17) for cell in cells]
    lines = max(prompt.count("\n") + 1 for prompt in prompts)
    cell_w, header_h, label_h, row_label_w = side + 3 * _PAD, 19 * lines + 8, 44, 96
    width = row_label_w + cell_w * len(cells)
    height = 36 + header_h + len(rows) * (side + label_h + _PAD)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((_PAD, 8), title, fill="black", font=bold)
    for column, cell in enumerate(cells):
        x = row_label_w + column * cell_w + _PAD
        draw.multiline_text((x, 40), prompts[column], fill="black", font=font, spacing=2)
        for row, name in enumerate(rows):
            y = 36 + header_h + row * (side + label_h + _PAD)
            canvas.paste(cell["images"][name], (x, y))
            colour = "darkgreen" if not cell["results"][name]["wrong"] else "firebrick"
            draw.multiline_text((x, y + side + 3), _label(cell["results"][name]), fill=colour, font=font, spacing=1)
    for row, name in enumerate(rows):
        y = 36 + header_h + row * (side + label_h + _PAD) + side // 2 - 10
        draw.multiline_text((_PAD, y), name, fill="black", font=bold, spacing=2)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished run folder (with checkpoints/)")
    parser.add_argument("--out", type=Path, default=Path("docs/images/tiny_base_vs_aligned.png"))
    parser.add_argument("--json", type=Path, help="write per-prompt accuracies and the chosen columns here")
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=4, help="seeds per held-out prompt (the evaluation's)")
    parser.add_argument("--solver", default="dpmpp2m")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()

    folder = latest_checkpoint(args.run / "checkpoints")
    if folder is None or not (folder / LORA).is_file():
        raise SystemExit(f"no checkpoint with {LORA} under {args.run / 'checkpoints'}; pass a finished run folder")
    held_out = shapes.test_prompts()
    prompts = [p for p in held_out for _ in range(args.seeds)]
    # The evaluation's seeds (prompt-major), so these images are the ones the run's metrics scored.
    seeds = [EVAL_SEED_BASE + i for i in range(len(prompts))]
    model = load_model("tiny")
    images = {"base": sample_all(model, prompts, seeds, args.solver, args.steps)}
    apply_lora_file(model, folder / LORA)
    step = int(folder.name.split("-")[-1])
    aligned = f"aligned\n(step {step})"
    images[aligned] = sample_all(model, prompts, seeds, args.solver, args.steps)
    results = {name: score_images(batch, prompts) for name, batch in images.items()}

    def per_prompt(name: str) -> list[list[float]]:
        flat = [r["gold"] for r in results[name]]
        return [flat[i : i + args.seeds] for i in range(0, len(flat), args.seeds)]

    picked = pick_columns(per_prompt("base"), per_prompt(aligned), args.columns)
    cells = []
    for prompt, seed, why in picked:
        index = prompt * args.seeds + seed
        cells.append(
            {
                "prompt": held_out[prompt],
                "seed": seeds[index],
                "why": why,
                "images": {name: to_pil(images[name][index], _SCALE) for name in images},
                "results": {name: results[name][index] for name in images},
            }
        )
    summary = {
        name: {key: sum(r[key] for r in results[name]) / len(prompts) for key in ("gold", "clean")} for name in images
    }
    title = (
        f"held-out prompts, same noise; mean over {len(prompts)} images: gold (render match) "
        f"{summary['base']['gold']:.3f} -> {summary[aligned]['gold']:.3f}, "
        f"clean {summary['base']['clean']:.3f} -> {summary[aligned]['clean']:.3f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    render(cells, list(images), title).save(args.out)
    print(f"wrote {args.out}: {title}")
    if args.json:
        record = {
            "run": str(args.run),
            "checkpoint": str(folder),
            "seeds_per_prompt": args.seeds,
            "summary": summary,
            "columns": [{k: c[k] for k in ("prompt", "seed", "why")} for c in cells],
            "per_prompt": {name: per_prompt(name) for name in images},
        }
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
