"""Starting a worker on demand, and making sure only one serves each device.

A worker holds an OS lock on `workers/<device>.lock` in the home folder for its whole life. The
kernel drops the lock when the process dies, however it dies, so "is a worker alive?" never
depends on a pid file that a crash left behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import exists, select

from .home import worker_log
from .registry import Registry, open_registry
from .schema import Run

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def normalize_device(device: str | None) -> str | None:
    """One name per device, so two workers cannot both think they own it: `cuda` and `CUDA:0` are
    `cuda:0`; None, "" and "auto" mean the default device (None)."""
    if device is None:
        return None
    name = device.strip().lower()
    if name in ("", "auto"):
        return None
    if name in ("cuda", "xpu", "npu"):
        return f"{name}:0"
    return name


def lock_file(home: Path, device: str | None) -> Path:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", normalize_device(device) or "default")
    return home / "workers" / f"{name}.lock"


def runs_waiting(registry: Registry) -> bool:
    with registry.read() as session:
        return bool(session.scalar(select(exists().where(Run.status == "queued"))))


def work_waiting(registry: Registry) -> bool:
    """Queued runs, or runs a dead worker left behind that a starting worker would resume: a crash
    at night is picked up by the next front end that looks, not only by the next queued run."""
    from .liveness import recover_stale_runs

    recover_stale_runs(registry)
    waiting = (Run.status == "queued") | ((Run.status == "interrupted") & (Run.crashes > 0))
    with registry.read() as session:
        return bool(session.scalar(select(exists().where(waiting))))


class WorkerLock:
    """Exclusive, non-blocking, released by the OS when the holder exits or is killed."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = None

    def acquire(self, wait_s: float = 0.0) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        deadline = time.monotonic() + wait_s
        while not _try_lock(handle):
            if time.monotonic() >= deadline:
                handle.close()
                return False
            time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")  # for people reading the folder; liveness uses the lock
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor releases the lock
            self._handle = None


def _try_lock(handle) -> bool:
    if os.name == "nt":
        import msvcrt

        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def worker_alive(home: Path, device: str | None = None) -> bool:
    probe = WorkerLock(lock_file(home, device))
    if probe.acquire():
        probe.release()
        return False
    return True


# ComfyUI imports this folder under a module name made from its path, which `python -m` cannot
# take, and the folder may be named anything (neighbor-grpo, a git clone's name): the worker
# registers the folder as `neighbor_grpo` by path, then runs the CLI.
_BOOTSTRAP = (
    "import importlib.util, sys; root = sys.argv.pop(1); "
    "spec = importlib.util.spec_from_file_location('neighbor_grpo', root + '/__init__.py', "
    "submodule_search_locations=[root]); package = importlib.util.module_from_spec(spec); "
    "sys.modules['neighbor_grpo'] = package; spec.loader.exec_module(package); "
    "from neighbor_grpo.backend.cli import main; sys.exit(main())"
)


def worker_command(home: Path, device: str | None = None) -> tuple[list[str], dict[str, str]]:
    arguments = ["worker", "--home", str(home), "--exit-when-idle"]
    if device is not None:
        arguments += ["--device", device]
    if __name__.split(".")[0] == "neighbor_grpo":
        return [sys.executable, "-m", "neighbor_grpo", *arguments], dict(os.environ)
    return [sys.executable, "-c", _BOOTSTRAP, str(_PACKAGE_ROOT), *arguments], dict(os.environ)


def ensure_worker(home: Registry | str | os.PathLike | None = None, device: str | None = None) -> int | None:
    """Start a detached worker if runs are queued and none serves `device`; the new pid, or None.

    Its output goes to logs/worker.log in the home folder; it exits when the queue is empty.
    Two front ends racing here may both start one: the loser finds the lock taken and exits.
    """
    registry = open_registry(home)
    device = normalize_device(device)
    if not work_waiting(registry) or worker_alive(registry.home, device):
        return None
    command, env = worker_command(registry.home, device)
    log = worker_log(registry.home)
    log.parent.mkdir(parents=True, exist_ok=True)
    detach = (
        {"creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
        if os.name == "nt"
        else {"start_new_session": True}
    )
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=registry.home,
            env=env,
            **detach,
        )
    return process.pid
