"""The README demo's numbers: the default config trained on several seeds, held-out change with intervals.

    python bench/demo_seeds.py [--config configs/tiny_neighbor_grpo.yaml] [--seeds 0 1 2 3 4 5]
                               [--workers 2] [--set key=value ...] [--json out.json]

Each seed trains the config exactly as `ngrpo train` would (same trainer, same evaluation: the
config's held-out prompts and fixed evaluation noise), in its own single-thread process so that
seeds run side by side; quality is per iteration and does not depend on the machine's load. The
base row is the step-0 evaluation, which is the same for every seed. Each figure's change is paired
(the same held-out images and noise before and after), with a 95 % Student-t interval over the
training seeds; it does not include the sampling error of the held-out set itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper_stats import interval

ROOT = Path(__file__).resolve().parents[1]
# The held-out figures the table shows, in order (those a config does not evaluate are left out).
SHOWN = (
    ("eval/shapes_accuracy", "attribute accuracy"),
    ("eval/shapes_render_match", "render match (gold)"),
    ("eval/shapes_render_fit", "render fit (gold)"),
    ("eval/shapes_clean", "cleanliness"),
    ("eval/shapes_fidelity", "fidelity"),
    ("eval/reward", "trained objective"),
)


def train_seed(config_path: str, overrides: dict, seed: int) -> dict:
    """One seed's run in this (spawned) process: every evaluation, and the training time."""
    import torch

    from neighbor_grpo.backend.training.config import load_config
    from neighbor_grpo.backend.training.reporting import JsonlReporter
    from neighbor_grpo.backend.training.trainer import Trainer

    torch.set_num_threads(1)
    config = load_config(config_path, {**overrides, "seed": seed})
    with tempfile.TemporaryDirectory(prefix=f"ngrpo-demo-{seed}-") as folder:
        started = time.perf_counter()
        outcome = Trainer(config, Path(folder), JsonlReporter(Path(folder)), device="cpu").run()
        wall = time.perf_counter() - started
        rows = [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    evaluations = [{k: v for k, v in row.items() if k == "step" or k.startswith("eval/")} for row in rows]
    evaluations = [e for e in evaluations if len(e) > 1]
    return {"seed": seed, "status": outcome.status, "step": outcome.step, "reason": outcome.reason,
            "wall_seconds_1_thread": wall, "evaluations": evaluations}  # fmt: skip


def summarise(results: list[dict]) -> dict:
    base = results[0]["evaluations"][0]
    finals = {r["seed"]: r["evaluations"][-1] for r in results}
    shown = [(key, label) for key, label in SHOWN if key in base]
    summary = {}
    for key, label in shown:
        values = [finals[s][key] for s in finals]
        summary[key] = {
            "label": label,
            "base": base[key],
            "final": interval(values),
            "change": interval([v - base[key] for v in values]),
        }
    return {"base": base, "finals": finals, "summary": summary}


def table(report: dict) -> str:
    summary = report["summary"]
    keys = list(summary)
    lines = [
        "| seed | " + " | ".join(summary[k]["label"] for k in keys) + " |",
        "|---|" + "---|" * len(keys),
        "| base | " + " | ".join(f"{summary[k]['base']:.3f}" for k in keys) + " |",
    ]
    for seed, final in report["finals"].items():
        lines.append(f"| {seed} (step {final['step']}) | " + " | ".join(f"{final[k]:.3f}" for k in keys) + " |")
    n = len(report["finals"])
    cells = [f"{c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]" for c in (summary[k]["change"] for k in keys)]
    lines.append(f"| change, mean [95 % t, n = {n}] | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "tiny_neighbor_grpo.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--workers", type=int, default=2, help="seeds trained at once, one thread each")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("an interval needs at least 2 seeds")
    from neighbor_grpo.backend.training.config import ConfigError, parse_override

    try:
        overrides = dict(parse_override(item) for item in args.set)
    except ConfigError as error:
        parser.error(str(error))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.time()
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(train_seed, [args.config] * len(args.seeds), [overrides] * len(args.seeds), args.seeds))
    report = summarise(results)
    print(table(report))
    for r in results:
        if r["status"] != "finished" or r["reason"]:
            print(f"seed {r['seed']}: {r['status']} at step {r['step']} {r['reason']}")
    if args.json:
        payload = {
            "config": args.config, "overrides": overrides, "seeds": args.seeds, "runs": results, **report,
            "wall_seconds": time.time() - started, "load_average_end": os.getloadavg(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        }  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
