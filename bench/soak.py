"""Crash soak of the registry and the worker, with real worker processes on the embedded model.

    python bench/soak.py --json out/soak.json [--kills 20] [--runs 3] [--iterations 40]

1. Kill soak: `--runs` runs are queued; a worker process is started and SIGKILLed after a random
   delay, `--kills` times; then a last worker finishes the queue. Every run must finish, with each
   step's metrics present once and equal to an uninterrupted run of the same config (timings
   excepted), and no run may be left running.
2. Reader soak: `--readers` processes poll the registry at `--hz` (list, show, metric series,
   latest metrics: what a dashboard does) while a worker trains one run; each counts
   "database is locked" errors and any other error.

Prints a table and writes JSON. Figures measured on a loaded machine say nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Metrics that measure time or machine load, not training: they differ between any two runs.
TIMING = ("s_per_iter", "rollout_s", "reward_s", "train_s", "eval_s", "eval/s")


def run_config(name: str, seed: int, iterations: int) -> dict:
    """A small run of the embedded model: a few tenths of a second per iteration on 2 cores."""
    return {
        "name": name, "model": "tiny", "iterations": iterations, "prompts_per_iteration": 2, "group_size": 4,
        "seed": seed, "checkpoint_every": 3, "keep_checkpoints": 2,
        "neighbor": {"steps": 4, "anchors": 2, "trained_steps": 2},
        "lora": {"rank": 4, "alpha": 4},
        "optimizer": {"learning_rate": 1e-3, "micro_batch": 8},
        "eval": {"every": 10, "max_prompts": 2, "seeds_per_prompt": 1, "gallery_size": 1},
    }  # fmt: skip


def queue(home: Path, config: dict) -> int:
    from neighbor_grpo.backend.actions import RunRequest, queue_run

    return queue_run(home, RunRequest(config, start_worker=False)).run_id


def start_worker(home: Path, log) -> subprocess.Popen:
    env = {**os.environ, "NGRPO_MAX_RESTARTS": "1000"}  # the soak kills on purpose, far past the limit
    command = [sys.executable, "-m", "neighbor_grpo", "worker", "--home", str(home), "--exit-when-idle"]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def training_metrics(home: Path, run_id: int) -> dict[str, list[tuple[int, float]]]:
    from neighbor_grpo.storage.history import metric_series

    return {name: points for name, points in metric_series(home, run_id).items() if not name.endswith(TIMING)}


def _training_under(home: Path, pid: int) -> bool:
    from neighbor_grpo.storage.runs import list_runs

    return any(run.status == "running" and run.worker_pid == pid for run in list_runs(home))


def _wait_until_training(home: Path, worker: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while worker.poll() is None and time.monotonic() < deadline and not _training_under(home, worker.pid):
        time.sleep(0.2)


def reference_runs(folder: Path, configs: list[dict]) -> list[dict]:
    """The same configs trained without interruption, in this process."""
    from neighbor_grpo.backend.worker import Worker

    home = folder / "reference"
    ids = [queue(home, config) for config in configs]
    Worker(home, exit_when_idle=True).serve(handle_signals=False)
    return [training_metrics(home, run_id) for run_id in ids]


def kill_soak(folder: Path, runs: int, kills: int, iterations: int, delay: tuple[float, float], seed: int) -> dict:
    from neighbor_grpo.storage.runs import list_runs

    configs = [run_config(f"soak-{i}", seed=i, iterations=iterations) for i in range(runs)]
    started = time.perf_counter()
    references = reference_runs(folder, configs)
    reference_s = time.perf_counter() - started
    home = folder / "killed"
    ids = [queue(home, config) for config in configs]
    chooser = random.Random(seed)
    landed = mid_run = 0
    with open(folder / "workers.log", "ab") as log:
        for _ in range(kills):
            worker = start_worker(home, log)
            # Most kills land while a run trains (at a random moment of it: rollout, update,
            # evaluation, checkpoint, registry write); one in five while the worker starts up.
            if chooser.random() >= 0.2:
                _wait_until_training(home, worker)
            time.sleep(chooser.uniform(*delay))
            if worker.poll() is None:
                training = _training_under(home, worker.pid)
                worker.send_signal(signal.SIGKILL)
                landed += 1
                mid_run += training
            worker.wait()
            if all(run.status == "finished" for run in list_runs(home)):
                break
        last = start_worker(home, log)
        last.wait(timeout=3600)
    infos = {run.id: run for run in list_runs(home)}
    problems = []
    for run_id, reference in zip(ids, references, strict=True):
        run = infos[run_id]
        if run.status != "finished":
            problems.append(f"run {run_id} is {run.status} ({run.error})")
            continue
        got = training_metrics(home, run_id)
        steps = [step for step, _ in got.get("reward", [])]
        if steps != list(range(1, iterations + 1)):
            problems.append(f"run {run_id}: reward steps {steps[:5]}… are not 1..{iterations} once each")
        if got != reference:
            differing = sorted(name for name in set(got) | set(reference) if got.get(name) != reference.get(name))
            problems.append(f"run {run_id}: metrics differ from the uninterrupted run: {differing[:5]}")
    return {
        "runs": runs,
        "iterations": iterations,
        "kills_attempted": kills,
        "kills_landed": landed,
        "kills_mid_run": mid_run,
        "finished": sum(infos[i].status == "finished" for i in ids),
        "left_running": sum(run.status == "running" for run in infos.values()),
        "equal_to_uninterrupted": not problems,
        "problems": problems,
        "reference_s": round(reference_s, 1),
        "soak_s": round(time.perf_counter() - started - reference_s, 1),
    }


READER = """
import json, sys, time
from neighbor_grpo.backend.actions import list_runs
from neighbor_grpo.storage.history import latest_metrics, metric_series
from neighbor_grpo.storage.runs import get_run
home, run_id, period, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
counts = {"polls": 0, "locked": 0, "other_errors": 0, "examples": []}
while True:
    began = time.monotonic()
    try:
        list_runs(home)
        status = get_run(home, run_id).status
        metric_series(home, run_id, max_points=200)
        latest_metrics(home, run_id)
        counts["polls"] += 1
    except Exception as error:
        status = None
        kind = "locked" if "database is locked" in str(error) else "other_errors"
        counts[kind] += 1
        if len(counts["examples"]) < 3:
            counts["examples"].append(f"{type(error).__name__}: {error}"[:300])
    if status in ("finished", "failed", "cancelled", "interrupted"):
        break
    time.sleep(max(0.0, period - (time.monotonic() - began)))
json.dump(counts, open(out, "w"))
"""


def reader_soak(folder: Path, readers: int, hz: float, iterations: int) -> dict:
    home = folder / "readers"
    run_id = queue(home, run_config("read-me", seed=0, iterations=iterations))
    started = time.perf_counter()
    with open(folder / "reader-worker.log", "ab") as log:
        worker = start_worker(home, log)
        outs = [folder / f"reader-{i}.json" for i in range(readers)]
        processes = [
            subprocess.Popen([sys.executable, "-c", READER, str(home), str(run_id), str(1.0 / hz), str(out)])
            for out in outs
        ]
        worker.wait(timeout=3600)
        for process in processes:
            process.wait(timeout=600)
    counts = [json.loads(out.read_text()) for out in outs]
    return {
        "readers": readers,
        "hz": hz,
        "iterations": iterations,
        "polls": sum(c["polls"] for c in counts),
        "database_locked": sum(c["locked"] for c in counts),
        "other_errors": sum(c["other_errors"] for c in counts),
        "examples": [e for c in counts for e in c["examples"]][:3],
        "train_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--min-delay", type=float, default=0.0, help="seconds from the kill's starting point")
    parser.add_argument("--max-delay", type=float, default=8.0)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--hz", type=float, default=5.0)
    parser.add_argument("--reader-iterations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", type=Path, help="keep the homes and logs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ngrpo-soak-") as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        kills = kill_soak(folder, args.runs, args.kills, args.iterations, (args.min_delay, args.max_delay), args.seed)
        readers = reader_soak(folder, args.readers, args.hz, args.reader_iterations)
    result = {
        "machine": {"cpus": os.cpu_count(), "load_before": load, "python": platform.python_version()},
        "kill_soak": kills,
        "reader_soak": readers,
    }
    print("| soak | figure |\n|---|---|")
    print(f"| SIGKILLs landed (of {kills['kills_attempted']}) | {kills['kills_landed']} |")
    print(f"| … of them while a run was training | {kills['kills_mid_run']} |")
    print(f"| runs finished (of {kills['runs']}) | {kills['finished']} |")
    print(f"| runs left running | {kills['left_running']} |")
    print(f"| metrics equal to uninterrupted runs, each step once | {kills['equal_to_uninterrupted']} |")
    print(f"| reader polls ({readers['readers']} readers at {readers['hz']} Hz) | {readers['polls']} |")
    print(f'| "database is locked" | {readers["database_locked"]} |')
    print(f"| other reader errors | {readers['other_errors']} |")
    for problem in kills["problems"] + readers["examples"]:
        print("  ", problem)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
