"""`ngrpo train --config configs/X.yaml`: train in the foreground with a progress bar."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from ..training.config import load_config
from ..training.reporting import CheckpointRecord, ControlFlags, JsonlReporter, Reporter, SampleRecord


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="align a model with Neighbor GRPO (or the SDE baseline)")
    parser.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set iterations=20 --set neighbor.sigma_p=0.3")
    parser.add_argument("--run-dir", type=Path, help="run folder (default runs/<name>); an existing one resumes")
    parser.add_argument("--name", help="run name (default: the config's)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 … (default: the config's, auto)")
    parser.set_defaults(run=run)


def parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


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
    from ..training.trainer import Trainer

    overrides = parse_overrides(args.overrides)
    if args.name:
        overrides["name"] = args.name
    config = load_config(args.config, overrides)
    run_dir = args.run_dir or Path("runs") / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    reporter = ProgressBar(JsonlReporter(run_dir), config.iterations, 0)
    started = time.perf_counter()
    outcome = Trainer(config, run_dir, reporter, device=args.device).run()
    reporter.bar.close()
    minutes = (time.perf_counter() - started) / 60
    print(f"{outcome.status} at iteration {outcome.step} in {minutes:.1f} min{': ' + outcome.reason if outcome.reason else ''}")
    print(f"run folder: {run_dir}  (metrics.jsonl, samples/, checkpoints/*/lora.safetensors)")
    return 0
