"""Crash safety of the worker: the heartbeat outlives database errors, a stale trainer cannot
write over a resumed run, a starting worker resumes what a dead one left (up to a limit), an
idle worker leaving cannot strand a run queued at that moment, and one device has one name."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from neighbor_grpo.backend import worker as worker_module
from neighbor_grpo.backend.actions import RunRequest, queue_run
from neighbor_grpo.backend.worker import Heartbeat, Worker
from neighbor_grpo.storage.claims import RunTaken, claim_run
from neighbor_grpo.storage.history import metric_series
from neighbor_grpo.storage.liveness import WorkerIdentity
from neighbor_grpo.storage.registry import forget_registries, open_registry
from neighbor_grpo.storage.reporter import RegistryReporter
from neighbor_grpo.storage.runs import get_run
from neighbor_grpo.storage.schema import Run
from neighbor_grpo.storage.workers import WorkerLock, lock_file, normalize_device


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("NGRPO_HOME", raising=False)
    yield tmp_path / "home"
    forget_registries()


@dataclass
class Outcome:
    status: str
    step: int
    reason: str = ""


class CountingTrainer:
    """Reports `steps` metrics and finishes; stands in for the real trainer where only the
    worker's bookkeeping is under test."""

    def __init__(self, reporter, steps=3):
        self.reporter, self.steps = reporter, steps

    def run(self):
        for step in range(1, self.steps + 1):
            self.reporter.metrics(step, {"reward": float(step)})
        self.reporter.flush()
        return Outcome("finished", self.steps)


def counting(config, run_dir, reporter, device):
    return CountingTrainer(reporter)


def _queue(home, name="r"):
    return queue_run(home, RunRequest({"name": name, "iterations": 3}, start_worker=False)).run_id


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _crashed_running(home, run_id, crashes=0):
    now = time.time()
    with open_registry(home).write() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status="running", worker_pid=_dead_pid(), worker_host=socket.gethostname(),
                    started_at=now, heartbeat_at=now, crashes=crashes)
        )  # fmt: skip


def test_device_names_are_normalised(tmp_path):
    assert normalize_device("cuda") == normalize_device("CUDA:0") == normalize_device(" cuda:0 ") == "cuda:0"
    assert normalize_device("auto") is normalize_device("") is normalize_device(None) is None
    assert normalize_device("cuda:1") == "cuda:1"
    assert lock_file(tmp_path, "cuda") == lock_file(tmp_path, "cuda:0") != lock_file(tmp_path, "cuda:1")


def test_the_heartbeat_survives_database_errors(home, monkeypatch):
    run_id = _queue(home)
    worker = Worker(home)
    claim_run(worker.registry, worker.identity, run_id)
    calls = []
    real_beat = worker_module.beat

    def flaky(registry, run, identity):
        calls.append(time.time())
        if len(calls) <= 2:
            raise OperationalError("UPDATE runs", {}, Exception("database is locked"))
        return real_beat(registry, run, identity)

    monkeypatch.setattr(worker_module, "beat", flaky)
    reporter = RegistryReporter(worker.registry, run_id)
    heartbeat = Heartbeat(worker, run_id, reporter, every=0.01)
    heartbeat.start()
    deadline = time.time() + 10
    while len(calls) < 4 and time.time() < deadline:
        time.sleep(0.01)
    assert heartbeat.is_alive() and not reporter.stop_requested
    heartbeat.stop()
    assert len(calls) >= 4


def test_a_stale_trainer_cannot_write_over_a_resumed_run(home):
    run_id = _queue(home)
    stale = WorkerIdentity(pid=999_999, host=socket.gethostname())
    registry = open_registry(home)
    claim_run(registry, stale, run_id)
    reporter = RegistryReporter(registry, run_id, owner=stale)
    reporter.metrics(1, {"reward": 1.0})
    reporter.flush()
    # The run is declared dead and another worker resumes it.
    with registry.write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(worker_pid=12345))
    reporter.metrics(2, {"reward": -5.0})
    with pytest.raises(RunTaken, match=f"run {run_id} is no longer owned by worker pid 999999"):
        reporter.flush()
    with pytest.raises(RunTaken):
        reporter.progress(2, 3)
    assert [step for step, _ in metric_series(home, run_id)["reward"]] == [1]


def test_a_starting_worker_resumes_runs_a_dead_worker_left(home):
    run_id = _queue(home)
    _crashed_running(home, run_id)
    Worker(home, exit_when_idle=True, trainer_factory=counting).serve(handle_signals=False)
    run = get_run(home, run_id)
    assert (run.status, run.progress_step) == ("finished", 3)


def test_a_run_that_keeps_dying_is_failed_with_its_last_error(home):
    run_id = _queue(home)
    _crashed_running(home, run_id, crashes=2)  # two deaths before; this is the third
    Worker(home, exit_when_idle=True, trainer_factory=counting, max_restarts=2).serve(handle_signals=False)
    run = get_run(home, run_id)
    assert run.status == "failed"
    assert "died 3 times in a row (limit 2); last: worker (pid" in run.error


def test_a_run_stopped_on_purpose_is_not_resumed_automatically(home):
    run_id = _queue(home)
    with open_registry(home).write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="interrupted", crashes=0))
    Worker(home, exit_when_idle=True, trainer_factory=counting).serve(handle_signals=False)
    assert get_run(home, run_id).status == "interrupted"


def test_an_idle_worker_leaving_does_not_strand_a_run_queued_at_that_moment(home, monkeypatch):
    first = _queue(home, "first")
    worker = Worker(home, exit_when_idle=True, trainer_factory=counting)
    real = Worker._serve_queue
    late = []

    def serve_then_someone_queues(self):
        real(self)
        if not late:
            # The queue looked empty and the lock is still held: a front end queueing now sees a
            # live worker and starts none.
            late.append(_queue(home, "late"))

    monkeypatch.setattr(Worker, "_serve_queue", serve_then_someone_queues)
    worker.serve(handle_signals=False)
    assert get_run(home, first).status == "finished"
    assert get_run(home, late[0]).status == "finished"


def test_foreground_training_takes_the_device_lock(home):
    run_id = _queue(home)
    held = WorkerLock(lock_file(open_registry(home).home, "cuda:0"))
    assert held.acquire()
    try:
        worker = Worker(home, device="cuda", trainer_factory=counting)
        message = worker.run_foreground(run_id, handle_signals=False)
        assert "a background worker serves device cuda:0" in message
        assert get_run(home, run_id).status == "queued"
    finally:
        held.release()
    assert Worker(home, device="cuda", trainer_factory=counting).run_foreground(run_id, handle_signals=False) is None
    assert get_run(home, run_id).status == "finished"


def test_foreground_training_checkpoints_on_sigterm(home):
    """SIGTERM reaches the trainer as a stop request (it checkpoints and returns interrupted)."""
    import os
    import signal

    run_id = _queue(home)
    seen = []

    class UntilStopped:
        def __init__(self, reporter):
            self.reporter = reporter

        def run(self):
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.time() + 10
            while not self.reporter.stop_requested and time.time() < deadline:
                time.sleep(0.01)
            seen.append(self.reporter.stop_requested)
            return Outcome("interrupted", 0)

    worker = Worker(home, trainer_factory=lambda c, d, reporter, device: UntilStopped(reporter))
    assert threading.current_thread() is threading.main_thread()
    assert worker.run_foreground(run_id) is None
    assert seen == [True] and get_run(home, run_id).status == "interrupted"


def test_front_ends_start_a_worker_for_runs_a_crash_left_behind(home):
    from neighbor_grpo.storage.workers import work_waiting

    run_id = _queue(home)
    registry = open_registry(home)
    with registry.write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="finished"))
    assert not work_waiting(registry)
    with registry.write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="queued"))
    _crashed_running(home, run_id)
    # stale_after is 30 s for front ends: make the heartbeat old enough.
    with registry.write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=time.time() - 60))
    assert work_waiting(registry)
    assert get_run(home, run_id).status == "interrupted"
