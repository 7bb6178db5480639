"""The worker: the only process that trains.

It claims queued runs from the registry one at a time, drives the trainer with a
`RegistryReporter`, keeps a heartbeat from its own thread, and settles every run it took:
finished, cancelled, interrupted (resumable) or failed (with the error's last line). SIGTERM and
Ctrl-C ask the trainer to checkpoint and stop; a second Ctrl-C leaves at once.

A starting worker first resumes the runs a dead worker left behind (up to `max_restarts` deaths
in a row, then the run fails with its last error), so a crash at night does not stall the queue
until morning. A foreground `ngrpo train` goes through `run_foreground`: the same device lock and
the same signal handling as a worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from ..storage.claims import RunTaken, beat, claim_next_run, claim_run, requeue_crashed_runs, settle_run
from ..storage.liveness import HEARTBEAT_S, WorkerIdentity, recover_stale_runs
from ..storage.registry import RegistryError, open_registry
from ..storage.reporter import RegistryReporter
from ..storage.schema import Run
from ..storage.workers import WorkerLock, lock_file, normalize_device, runs_waiting
from .training.reporting import Reporter


class TrainerLike(Protocol):
    def run(self) -> Any: ...  # returns an object with `status` and `step` (TrainOutcome)


TrainerFactory = Callable[[dict, Path, Reporter, "str | None"], TrainerLike]
MAX_RESTARTS_ENV = "NGRPO_MAX_RESTARTS"
DEFAULT_MAX_RESTARTS = 3


def default_max_restarts() -> int:
    value = os.environ.get(MAX_RESTARTS_ENV, "")
    return int(value) if value.strip().isdigit() else DEFAULT_MAX_RESTARTS


def build_trainer(config: dict, run_dir: Path, reporter: Reporter, device: str | None) -> TrainerLike:
    # Imported here so a front end can import this module without loading torch.
    from .training.config import TrainConfig
    from .training.trainer import Trainer

    return Trainer(TrainConfig.from_dict(config), run_dir, reporter, device=device)


class Heartbeat(threading.Thread):
    """Beats while the trainer is busy (model loading, long rollouts) so nobody mistakes a slow
    step for a dead worker; if the run was declared dead meanwhile, it stops the trainer."""

    def __init__(self, worker: Worker, run_id: int, reporter: RegistryReporter, every: float = HEARTBEAT_S):
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.worker, self.run_id, self.reporter, self.every = worker, run_id, reporter, every
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            try:
                ours = beat(self.worker.registry, self.run_id, self.worker.identity)
            except SQLAlchemyError as error:
                # A locked or briefly unreachable database must not kill the heartbeat: the run
                # is still ours, and the next beat may well get through.
                self.worker.log(f"heartbeat of run {self.run_id} failed ({type(error).__name__}); retrying")
                continue
            if not ours:
                self.worker.log(f"run {self.run_id} was taken from this worker; stopping it")
                self.reporter.request_stop()
                return

    def stop(self) -> None:
        self._done.set()
        self.join()


class Worker:
    def __init__(
        self,
        home: str | os.PathLike | None = None,
        device: str | None = None,
        exit_when_idle: bool = False,
        idle_poll_s: float = 2.0,
        trainer_factory: TrainerFactory = build_trainer,
        max_restarts: int | None = None,
        processes: int = 1,
    ):
        self.registry = open_registry(home)
        self.device = normalize_device(device)
        self.identity = WorkerIdentity.current(self.device)
        self.max_restarts = default_max_restarts() if max_restarts is None else max_restarts
        self.exit_when_idle = exit_when_idle
        self.idle_poll_s = idle_poll_s
        self.trainer_factory = trainer_factory
        self.processes = processes  # > 1: each run on that many local processes (GPUs) via torchrun
        self._stop = threading.Event()
        self._reporter: RegistryReporter | None = None

    def log(self, message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} worker {self.identity.pid}: {message}", flush=True)

    def request_stop(self) -> None:
        self._stop.set()
        if self._reporter is not None:
            self._reporter.request_stop()

    def _on_signal(self, signum, _frame) -> None:
        if signum == signal.SIGINT and self._stop.is_set():
            raise KeyboardInterrupt
        self.log(f"{signal.Signals(signum).name}: checkpointing and stopping")
        self.request_stop()

    def serve(self, handle_signals: bool = True) -> int:
        """Run queued runs until stopped (or until the queue is empty with exit_when_idle)."""
        lock = WorkerLock(lock_file(self.registry.home, self.device))
        if not lock.acquire(wait_s=2.0):
            self.log(f"another worker already serves device {self.device or 'default'} in {self.registry.home}")
            return 0
        with self._signals(handle_signals):
            try:
                self._recover()
                self.log(f"serving {self.registry.home} on device {self.device or 'default'}")
                while True:
                    self._serve_queue()
                    lock.release()
                    # A front end that queued a run while we still held the lock saw a live worker
                    # and started none: look once more after letting go, and take it back if so.
                    if self._stop.is_set() or not runs_waiting(self.registry) or not lock.acquire():
                        break
            finally:
                lock.release()
        self.log("exiting")
        return 0

    def _serve_queue(self) -> None:
        while not self._stop.is_set():
            run_id = claim_next_run(self.registry, self.identity)
            if run_id is not None:
                self.run_one(run_id)
            elif self.exit_when_idle:
                return
            else:
                self._stop.wait(self.idle_poll_s)

    def _recover(self) -> None:
        for run_id in recover_stale_runs(self.registry, stale_after=0.0):
            self.log(f"run {run_id} was left running by a dead worker; marked interrupted")
        requeued, failed = requeue_crashed_runs(self.registry, self.max_restarts)
        for run_id in requeued:
            self.log(f"run {run_id}: its worker died; resuming it from its last checkpoint")
        for run_id in failed:
            self.log(f"run {run_id}: its worker died more than {self.max_restarts} times in a row; failed")

    @contextlib.contextmanager
    def _signals(self, enabled: bool = True):
        previous = {}
        if enabled and threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run_foreground(self, run_id: int, handle_signals: bool = True) -> str | None:
        """Train one queued run in this process under the device lock, as a worker would (a
        foreground `ngrpo train`); None when done, else why a background worker has it instead."""
        lock = WorkerLock(lock_file(self.registry.home, self.device))
        if not lock.acquire():
            return f"a background worker serves device {self.device or 'default'}; it will train the run"
        try:
            if claim_run(self.registry, self.identity, run_id) is None:
                return "a background worker took the run first"
            with self._signals(handle_signals):
                self.run_one(run_id)
        finally:
            lock.release()
        return None

    def run_one(self, run_id: int) -> None:
        with self.registry.read() as session:
            row = session.get(Run, run_id)
            config, folder = dict(row.config), row.folder
        try:
            run_dir = self.registry.run_path(folder)
        except RegistryError as error:
            settle_run(self.registry, run_id, self.identity, "failed", error=str(error))
            self.log(f"run {run_id}: failed: {error}")
            return
        self.log(f"run {run_id} ({config.get('name')}): starting in {run_dir}")
        reporter = RegistryReporter(self.registry, run_id, owner=self.identity)
        self._reporter = reporter
        if self._stop.is_set():  # a signal arrived between the claim and now
            reporter.request_stop()
        heartbeat = Heartbeat(self, run_id, reporter)
        heartbeat.start()
        try:
            outcome = self._trainer(config, run_id, run_dir, reporter).run()
        except RunTaken as error:
            self.log(str(error))  # the run lives on elsewhere: write nothing more to it
            return
        except Exception as error:
            with contextlib.suppress(RunTaken, SQLAlchemyError):
                reporter.flush()
            self._fail(run_id, run_dir, error)
            return
        except BaseException:
            # Second Ctrl-C: leave now; the last checkpoint on disk is where a resume continues.
            reporter.flush()
            settle_run(self.registry, run_id, self.identity, "interrupted", error="worker interrupted")
            raise
        finally:
            heartbeat.stop()
            self._reporter = None
        try:
            reporter.flush()
        except RunTaken as error:
            self.log(str(error))
            return
        # An early stop is a normal finish whose reason users still want to see where runs are listed.
        reason = getattr(outcome, "reason", "") or None
        settle_run(self.registry, run_id, self.identity, outcome.status, step=outcome.step, error=reason)
        self.log(f"run {run_id}: {outcome.status} at step {outcome.step}" + (f" ({reason})" if reason else ""))

    def _trainer(self, config: dict, run_id: int, run_dir: Path, reporter: RegistryReporter) -> TrainerLike:
        if self.processes > 1:
            from .training.launch import TorchrunRun

            return TorchrunRun(self.registry.home, run_id, run_dir, reporter, self.processes)
        return self.trainer_factory(config, run_dir, reporter, self.device)

    def _fail(self, run_id: int, run_dir: Path, error: Exception) -> None:
        """The run keeps its metrics, samples and checkpoints; the error is shown where runs are
        listed (one line) and kept whole in error.txt in the run folder."""
        summary = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        full = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(full, encoding="utf-8")
        except OSError as write_error:  # a full disk: the one-line error in the registry must still land
            self.log(f"run {run_id}: could not write error.txt ({write_error.strerror})")
        settle_run(self.registry, run_id, self.identity, "failed", error=summary)
        self.log(f"run {run_id}: failed: {summary} (traceback in {run_dir / 'error.txt'})")
