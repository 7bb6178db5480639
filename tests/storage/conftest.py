"""Fixtures for registry tests: a fresh home folder per test and helpers to fake a worker."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import update

from neighbor_grpo.backend.actions import RunRequest, queue_run
from neighbor_grpo.storage.registry import forget_registries, open_registry
from neighbor_grpo.storage.schema import Run


@pytest.fixture
def home(tmp_path, monkeypatch, registry_backend):
    """A fresh home folder; its registry is SQLite, or PostgreSQL (see `registry_backend`)."""
    monkeypatch.delenv("NGRPO_HOME", raising=False)
    yield tmp_path / "home"
    forget_registries()


@pytest.fixture
def queue(home):
    """queue(name, **config changes) → run id, with a small valid config."""

    def make(name: str = "run", **changes) -> int:
        return queue_run(
            home, RunRequest({"name": name, "model": "tiny", "iterations": 5, **changes}, start_worker=False)
        ).run_id

    return make


def set_run(home, run_id: int, **values) -> None:
    """Put a run into a state directly, as a worker (or a crash) would leave it."""
    with open_registry(home).write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(**values))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def running_values(pid: int, heartbeat_age: float = 0.0, host: str | None = None) -> dict:
    import socket

    now = time.time()
    return {
        "status": "running",
        "worker_pid": pid,
        "worker_host": host or socket.gethostname(),
        "started_at": now - heartbeat_age,
        "heartbeat_at": now - heartbeat_age,
    }
