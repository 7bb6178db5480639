"""Seconds per iteration and images per second of training on 1, 2, ... processes (torchrun).

    python bench/scaling.py --json out/scaling.json [--markdown out/scaling.md]
    python bench/scaling.py --device cuda --processes 1 2 4 8 --json out/scaling_gpu.json
    python bench/scaling.py --fsdp --json out/scaling_fsdp.json   # full fine-tune, sharded with FSDP2

Strong scaling: the global batch (the config's prompts_per_iteration × group_size) stays fixed and
is split over the processes, exactly as a worker with --nproc-per-node splits a run. Each setting
runs the trainer's own iteration (rollout, rewards, update, gradient all-reduce) under torchrun,
after warm-up iterations; on CPU every process gets cores/processes threads (gloo), on GPUs one
GPU each (NCCL). The machine's load average is recorded beside the numbers, because on a shared
machine it matters more than anything else here.

With --fsdp every setting fine-tunes the whole transformer (no LoRA) with distributed.fsdp: true
(one process trains it unsharded), and each row also gives what rank 0 holds of the trained
parameters, their gradients and the AdamW state: the memory FSDP divides by the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "tiny_neighbor_grpo.yaml"


def usable_cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def measure(args: argparse.Namespace) -> None:
    """One rank of one setting (run by torchrun): time `--iterations` iterations after warm-up."""
    import torch
    import torch.distributed as dist

    from neighbor_grpo.backend.training.config import load_config
    from neighbor_grpo.backend.training.fsdp import held_bytes
    from neighbor_grpo.backend.training.trainer import Trainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.device == "cpu":
        torch.set_num_threads(max(1, args.cores // world))
    overrides = {"device": args.device}
    if args.fsdp:
        overrides.update({"lora.enabled": False, "distributed.fsdp": True})
    config = load_config(args.config, overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, Path(run_dir), reporter=None)
        trainer._setup()
        for _ in range(args.warmup):
            trainer.iteration()
            trainer.step += 1
        barrier = dist.barrier if dist.is_initialized() else (lambda: None)
        barrier()
        started = time.perf_counter()
        for _ in range(args.iterations):
            trainer.iteration()
            trainer.step += 1
        barrier()
        elapsed = time.perf_counter() - started
        held = held_bytes(trainer.params, trainer.optimizer)
        trainer.topology.stop()
    if trainer.topology.is_main:
        per_iter = elapsed / args.iterations
        images = config.prompts_per_iteration * config.group_size
        result = {
            "processes": world,
            "device": args.device,
            "threads_per_process": torch.get_num_threads() if args.device == "cpu" else None,
            "s_per_iter": per_iter,
            "images_per_s": images / per_iter,
            "images_per_iter": images,
            "trained": "full, FSDP" if trainer.sharded else ("LoRA" if config.lora.enabled else "full"),
            "rank0_bytes": held,
        }
        Path(args.result).write_text(json.dumps(result), encoding="utf-8")


def run_setting(args: argparse.Namespace, processes: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = Path(handle.name)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
        str(Path(__file__).resolve()), "--measure", "--result", str(result), "--config", str(args.config),
        "--device", args.device, "--iterations", str(args.iterations), "--warmup", str(args.warmup),
        "--cores", str(args.cores), *(["--fsdp"] if args.fsdp else []),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, args.cores // processes)))
    load_before = os.getloadavg()[0]
    subprocess.run(command, check=True, env=env)
    row = json.loads(result.read_text(encoding="utf-8"))
    result.unlink()
    row["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return row


def table(rows: list[dict]) -> str:
    base = rows[0]["s_per_iter"]
    lines = [
        "| device | processes | trained | threads each | s/iter | images/s | speed-up "
        "| rank 0 holds: params / grads / AdamW (MiB) | load avg (before, after) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        held = row.get("rank0_bytes")
        mib = " / ".join(f"{held[k] / 2**20:.2f}" for k in ("parameters", "gradients", "optimizer")) if held else "-"
        lines.append(
            f"| {row['device']} | {row['processes']} | {row.get('trained', '-')} | {row['threads_per_process'] or '-'} "
            f"| {row['s_per_iter']:.3f} | {row['images_per_s']:.1f} | {base / row['s_per_iter']:.2f}× | {mib} "
            f"| {row['load_average_1min'][0]}, {row['load_average_1min'][1]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training config (global batch)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--processes", type=int, nargs="+", help="default: 1 2 on CPU, 1..all GPUs on cuda")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per setting")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--cores", type=int, default=usable_cores(), help="CPU cores to share (CPU runs)")
    parser.add_argument("--fsdp", action="store_true", help="full fine-tune sharded with FSDP2 (distributed.fsdp)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return

    processes = args.processes
    if processes is None:
        if args.device == "cuda":
            import torch

            processes = list(range(1, torch.cuda.device_count() + 1))
        else:
            processes = [1, 2]
    rows = [run_setting(args, count) for count in processes]
    text = table(rows)
    print(text)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "usable_cores": usable_cores(),
            "cores_shared": args.cores,
            "python": platform.python_version(),
        },
        "config": str(args.config),
        "fsdp": args.fsdp,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "rows": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
