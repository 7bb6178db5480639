"""A run on several processes: the per-rank entry point, and the worker's side that starts it.

Every rank runs this module under a launcher that sets RANK / WORLD_SIZE (torchrun, accelerate
launch):

    torchrun --nproc-per-node 2 -m neighbor_grpo.backend.training.launch --config configs/x.yaml
    accelerate launch --num_processes 2 -m neighbor_grpo.backend.training.launch --run-id 7

Rank 0 queues the config (or takes the queued run `--run`), claims it and keeps its heartbeat, as a
worker would; every rank then reads the run's config and folder from the registry and trains its
shard. A worker started with `--nproc-per-node N` claims runs itself and starts this module through
torchrun with `--attach`: rank 0 then only reports, and the worker settles the run.

A rank that raises writes its traceback to `ranks/rank-<r>.txt` in the run folder; the worker
turns the first one (or torchrun's exit report for a rank killed by a signal) into the run's
error, and the run resumes from its last checkpoint like any other failed run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from ...storage.registry import open_registry
from ...storage.schema import Run
from .distributed import Topology
from .trainer import TrainOutcome, resolve_device

RANK_ERRORS = "ranks"
STOP_FILE = "ranks/stop"
OUTCOME_FILE = "ranks/outcome.json"


class RankFailed(RuntimeError):
    """A rank of a multi-process run failed; the message says which and why."""


class RankTraceback(Exception):
    """The failed rank's own traceback, chained under RankFailed so error.txt shows it."""


class StopFileReporter:
    """Rank 0's reporter in a worker-launched run: the worker asks for a stop (SIGTERM, run taken
    away) by creating STOP_FILE, since it cannot reach the reporter in this process."""

    def __init__(self, inner, stop_file: Path):
        self.inner, self.stop_file = inner, stop_file

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def poll(self):
        flags = self.inner.poll()
        flags.stop = flags.stop or self.stop_file.exists()
        return flags


# -- the rank side ---------------------------------------------------------------------------
def _run_id(args, topology: Topology, config) -> int:
    """Rank 0 queues `config` (the loaded --config) or finds the run; every rank learns its id."""
    run_id = None
    if topology.is_main:
        from ..actions import RunRequest, get_run, queue_run

        if config is not None:
            run_id = queue_run(args.home, RunRequest(config, name=args.name, start_worker=False)).run_id
        else:
            run_id = get_run(args.home, args.run_id).id
    return topology.broadcast(run_id)


def rank_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neighbor_grpo.backend.training.launch", description=__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--config", type=Path, help="queue this YAML config and train it")
    target.add_argument("--run-id", help="train this queued run (id or name)")
    parser.add_argument("--name", help="run name for --config")
    parser.add_argument("--home", help="home folder (default: $NGRPO_HOME, else the user data folder)")
    parser.add_argument("--attach", action="store_true", help="the run was claimed by the worker that started us")
    args = parser.parse_args(argv)

    topology = Topology.from_env()
    registry = open_registry(args.home)
    # Join the group before anything else so ranks can agree on the run (devices per config).
    loaded = None
    if args.config is not None:
        from .config import load_config

        loaded = load_config(args.config)
    topology.start(topology.device(resolve_device(loaded.device if loaded is not None else None)))
    run_id = _run_id(args, topology, loaded)
    with registry.read() as session:
        row = session.get(Run, run_id)
        config, run_dir = dict(row.config), registry.run_path(row.folder)
    try:
        if args.attach or not topology.is_main:
            _train_rank(args, topology, registry, run_id, config, run_dir)
        else:
            _train_as_worker(registry, run_id)
    except BaseException as error:
        _record_rank_error(run_dir, topology.rank, error)
        raise
    return 0


def _train_rank(args, topology: Topology, registry, run_id: int, config: dict, run_dir: Path) -> None:
    from .config import TrainConfig
    from .trainer import Trainer

    reporter = None
    if topology.is_main:
        from ...storage.reporter import RegistryReporter

        reporter = RegistryReporter(registry, run_id)
        if args.attach:
            reporter = StopFileReporter(reporter, run_dir / STOP_FILE)
    outcome = Trainer(TrainConfig.from_dict(config), run_dir, reporter).run()
    if topology.is_main and reporter is not None:
        reporter.flush()
        (run_dir / OUTCOME_FILE).write_text(json.dumps(outcome.__dict__), encoding="utf-8")


def _train_as_worker(registry, run_id: int) -> None:
    """Rank 0 of a directly launched run claims it, beats and settles it like a worker."""
    from ...storage.claims import claim_run
    from ..worker import Worker

    worker = Worker(registry)
    if claim_run(registry, worker.identity, run_id) is None:
        raise RuntimeError(f"run {run_id} is not queued (a worker took it, or it already ran); resume it first")
    worker.run_one(run_id)


def _record_rank_error(run_dir: Path, rank: int, error: BaseException) -> None:
    folder = run_dir / RANK_ERRORS
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    (folder / f"rank-{rank}.txt").write_text(text, encoding="utf-8")


# -- the worker side -------------------------------------------------------------------------
class TorchrunRun:
    """What a worker runs for a claimed run when it serves N local processes (GPUs): torchrun
    with this module on every rank; the outcome rank 0 wrote, or RankFailed."""

    def __init__(self, home: Path, run_id: int, run_dir: Path, reporter, processes: int):
        self.home, self.run_id, self.run_dir = home, run_id, run_dir
        self.reporter, self.processes = reporter, processes

    def command(self) -> list[str]:
        package = __name__.split(".")[0]  # inside ComfyUI the package has its folder's name
        return [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={self.processes}",
            "-m", f"{package}.backend.training.launch", "--run-id", str(self.run_id), "--home", str(self.home), "--attach",
        ]  # fmt: skip

    def run(self) -> TrainOutcome:
        ranks = self.run_dir / RANK_ERRORS
        for stale in ranks.glob("*") if ranks.exists() else []:
            stale.unlink()
        ranks.mkdir(parents=True, exist_ok=True)
        log_path = ranks / "torchrun.log"
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        if __name__.split(".")[0] != "neighbor_grpo":  # inside ComfyUI: make the pack importable
            package_parent = Path(__file__).resolve().parents[3]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_parent), env.get("PYTHONPATH")]))
        with open(log_path, "wb") as log:
            process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                while process.poll() is None:
                    if self.reporter.stop_requested and not (self.run_dir / STOP_FILE).exists():
                        (self.run_dir / STOP_FILE).touch()
                    time.sleep(0.2)
            except BaseException:
                process.send_signal(signal.SIGTERM)
                process.wait()
                raise
        if process.returncode == 0:
            outcome = json.loads((self.run_dir / OUTCOME_FILE).read_text(encoding="utf-8"))
            return TrainOutcome(**outcome)
        raise self._failure(process.returncode, log_path)

    def _failure(self, code: int, log_path: Path) -> RankFailed:
        """Blame the rank torchrun saw fail first (its "Root Cause"): the others only saw their
        peer vanish, or were stopped by torchrun."""
        log = log_path.read_text(encoding="utf-8", errors="replace")
        root = _ROOT_CAUSE.search(log.rsplit("Root Cause", 1)[-1]) if "Root Cause" in log else None
        tracebacks = sorted((self.run_dir / RANK_ERRORS).glob("rank-*.txt"), key=lambda path: path.stat().st_mtime)
        if root is not None:
            rank, exit_code = int(root.group(1)), int(root.group(2))
            own = self.run_dir / RANK_ERRORS / f"rank-{rank}.txt"
            tracebacks = [own] if own.exists() else []
            if not tracebacks:
                how = f"killed by {_signal_name(-exit_code)}" if exit_code < 0 else f"exited with code {exit_code}"
                failure = RankFailed(f"rank {rank} died: {how} (torchrun's report: {log_path})")
                failure.__cause__ = RankTraceback(log[-4000:])
                return failure
        if tracebacks:
            text = tracebacks[0].read_text(encoding="utf-8")
            last = text.strip().splitlines()[-1] if text.strip() else "no message"
            failure = RankFailed(f"{tracebacks[0].stem.replace('-', ' ')} failed: {last}")
            failure.__cause__ = RankTraceback(text)
            return failure
        failure = RankFailed(f"torchrun exited with {code} (its report: {log_path})")
        failure.__cause__ = RankTraceback(log[-4000:])
        return failure


# torchrun's failure report: "rank      : 1 (local_rank: 1)" then "exitcode  : -9 (pid: 123)".
_ROOT_CAUSE = re.compile(r"rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-?\d+)")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


if __name__ == "__main__":
    sys.exit(rank_main())
