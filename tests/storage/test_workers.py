"""One worker per device, and front ends start one only when runs wait and none is alive."""

from __future__ import annotations

import sys

from neighbor_grpo.storage.registry import open_registry
from neighbor_grpo.storage.workers import WorkerLock, ensure_worker, lock_file, worker_alive, worker_command


def test_the_worker_lock_is_exclusive_per_device(home):
    first = WorkerLock(lock_file(home, "cuda:0"))
    assert first.acquire()
    assert not WorkerLock(lock_file(home, "cuda:0")).acquire(wait_s=0.2)
    assert WorkerLock(lock_file(home, "cuda:1")).acquire()
    assert worker_alive(home, "cuda:0") and not worker_alive(home, None)
    first.release()
    assert not worker_alive(home, "cuda:0")


def test_no_worker_is_started_for_an_empty_queue_or_when_one_is_alive(home, queue):
    open_registry(home)
    assert ensure_worker(home) is None  # nothing queued
    queue()
    lock = WorkerLock(lock_file(home, None))
    assert lock.acquire()
    assert ensure_worker(home) is None  # the live worker will take it
    lock.release()


def test_the_spawned_worker_is_this_python_running_our_cli(home):
    command, _ = worker_command(home, "cuda:1")
    assert command[:3] == [sys.executable, "-m", "neighbor_grpo"]
    assert command[3:] == ["worker", "--home", str(home), "--exit-when-idle", "--device", "cuda:1"]
