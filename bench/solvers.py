"""Held-out checker accuracy and wall time versus NFE for each solver on the embedded model.

    python bench/solvers.py --json out/solvers.json [--markdown out/solvers.md] [--seeds 2]

Every solver samples the same held-out prompts from the same initial noise.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from neighbor_grpo.backend import solvers
from neighbor_grpo.backend.models.registry import load_model
from neighbor_grpo.backend.sampling import generate
from neighbor_grpo.backend.world import checker, shapes

STEPS = (2, 4, 8, 16, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per held-out prompt")
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the table here as Markdown")
    args = parser.parse_args()

    model = load_model(args.model)
    prompts = [p for p in shapes.test_prompts() for _ in range(args.seeds)]
    seeds = list(range(len(prompts)))
    rows = []
    for solver in solvers.SOLVERS:
        for steps in args.steps:
            started = time.perf_counter()
            images = generate(model, prompts, seeds, solver=solver, steps=steps)
            seconds = time.perf_counter() - started
            summary = checker.attribute_accuracy(checker.check_batch(images, prompts))
            rows.append(
                {
                    "solver": solver,
                    "steps": steps,
                    "nfe": solvers.evaluations(solver, steps),
                    "seconds": seconds,
                    "images": len(prompts),
                    **summary,
                }
            )
            print(
                f"{solver:8s} steps {steps:3d}  NFE {rows[-1]['nfe']:3d}  mean {summary['mean']:.3f}  "
                f"all {summary['all']:.3f}  {seconds:6.2f} s",
                flush=True,
            )

    header = (
        "| solver | steps | NFE | attribute acc. | all correct | shape | colour | background | position | s / 120 img |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['solver']} | {r['steps']} | {r['nfe']} | {r['mean']:.3f} | {r['all']:.3f} | {r['shape']:.3f} | "
            f"{r['colour']:.3f} | {r['background']:.3f} | {r['position']:.3f} | {r['seconds']:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    machine = {"cpu_threads": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
