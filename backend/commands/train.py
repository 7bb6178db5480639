"""`ngrpo train --config configs/X.yaml`: train in the foreground with a progress bar, or
`--queue` it for the background worker. Either way the run is in the registry, so every front end
sees it, and `ngrpo runs resume` continues it from its last checkpoint."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from ..records import CheckpointRecord, ControlFlags, SampleRecord
from ..training.config import load_config, parse_override
from ..training.reporting import Reporter


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="align a model with Neighbor GRPO (or the SDE baseline)")
    parser.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set iterations=20 --set neighbor.sigma_p=0.3",
    )
    parser.add_argument("--name", help="run name (default: the config's; made unique with -2, -3 …)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 … (default: the config's, auto)")
    parser.add_argument("--model", help="override the config's model: tiny, a diffusers folder or a .safetensors file")
    parser.add_argument(
        "--gpu-memory", type=float, metavar="GB", help="refuse runs estimated above this (default: the GPU's total)"
    )
    parser.add_argument("--queue", action="store_true", help="queue the run for the background worker and return")
    parser.add_argument("--home", help="registry and run folders (default: $NGRPO_HOME, else the user data folder)")
    parser.set_defaults(run=run)


def parse_overrides(pairs: list[str]) -> dict:
    return dict(parse_override(pair) for pair in pairs)


class ProgressBar:
    """Wraps a reporter: shows iteration, reward, s/iter and ETA as the run goes."""

    def __init__(self, inner: Reporter, total: int, start: int):
        self.inner = inner
        self.bar = tqdm(total=total, initial=start, desc="train", unit="it")

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.inner.metrics(step, values)
        shown = {"reward": values.get("reward"), "eval": values.get("eval/reward"), "s/it": values.get("s_per_iter")}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items() if v is not None}, refresh=False)

    def samples(self, step: int, records: list[SampleRecord]) -> None:
        self.inner.samples(step, records)

    def checkpoint(self, record: CheckpointRecord) -> None:
        self.inner.checkpoint(record)

    def progress(self, step: int, total: int) -> None:
        self.inner.progress(step, total)
        self.bar.n = step
        self.bar.refresh()

    def rewind(self, step: int) -> None:
        self.inner.rewind(step)
        self.bar.n = step

    def poll(self) -> ControlFlags:
        return self.inner.poll()

    def flush(self) -> None:
        self.inner.flush()


def run(args: argparse.Namespace) -> int:
    from ...storage.workers import ensure_worker
    from ..actions import RunRequest, get_run, queue_run
    from ..worker import Worker, build_trainer

    overrides = parse_overrides(args.overrides)
    config = load_config(args.config, overrides)
    if args.device:
        config.device = args.device
    if args.model:
        config.model = args.model
    request = RunRequest(config, name=args.name, start_worker=args.queue, gpu_memory_gb=args.gpu_memory)
    queued = queue_run(args.home, request)
    if queued.memory is not None:
        print(queued.memory.summary())
    run_id = queued.run_id
    if args.queue:
        worker = f"started worker pid {queued.worker_pid}" if queued.worker_pid else "a worker is already running"
        print(f"queued run {run_id} ({queued.name}); {worker}. Follow it with `ngrpo runs show {run_id}`")
        return 0

    worker = Worker(args.home, device=args.device)
    bars: list[ProgressBar] = []

    def with_progress_bar(config_dict, run_dir, reporter, device):
        bars.append(ProgressBar(reporter, config.iterations, 0))
        return build_trainer(config_dict, run_dir, bars[-1], device)

    worker.trainer_factory = with_progress_bar
    started = time.perf_counter()
    print(f"run {run_id} ({queued.name}) in {queued.folder}")
    elsewhere = worker.run_foreground(run_id)
    ensure_worker(args.home, args.device)  # runs queued while this one held the device
    if elsewhere is not None:
        print(f"run {run_id} ({queued.name}) is queued: {elsewhere}; follow it with `ngrpo runs show {run_id}`")
        return 0
    for bar in bars:
        bar.bar.close()
    info = get_run(args.home, run_id)
    minutes = (time.perf_counter() - started) / 60
    reason = f": {info.error}" if info.error else ""
    print(f"{info.status} at iteration {info.progress_step} in {minutes:.1f} min{reason}")
    print(f"run folder: {info.folder}  (samples/, checkpoints/step-*/lora.safetensors)")
    return 0 if info.status == "finished" else 1
