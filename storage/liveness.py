"""Telling a live worker from a dead one, so no run stays "running" after a crash.

A worker writes a heartbeat every few seconds from its own thread (not only between training
steps, which can take minutes). A run is orphaned when its heartbeat is stale and its worker's
process is gone; a heartbeat silent for much longer counts as dead anyway, because a process id
can be reused and a worker on another host cannot be checked at all.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, select, update

from .registry import Registry
from .schema import Run

HEARTBEAT_S = 5.0
STALE_AFTER_S = 30.0
ABANDONED_AFTER_S = 600.0


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    # A killed child its parent has not reaped yet still answers signal 0.
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        state = stat.read_text().rpartition(")")[2].split()[0]
        return state not in ("Z", "X")
    return True


def _windows_pid_alive(pid: int) -> bool:
    # os.kill on Windows terminates the process, so ask the kernel instead.
    import ctypes

    process_query_limited_information, still_active = 0x1000, 259
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return False
    code = ctypes.c_ulong()
    kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
    kernel32.CloseHandle(handle)
    return code.value == still_active


@dataclass(frozen=True)
class WorkerIdentity:
    pid: int
    host: str
    device: str | None = None

    @classmethod
    def current(cls, device: str | None = None) -> WorkerIdentity:
        return cls(pid=os.getpid(), host=socket.gethostname(), device=device)


def is_orphaned(run: Run, now: float, stale_after: float, host: str) -> bool:
    silent = now - (run.heartbeat_at or run.started_at or 0.0)
    if silent > ABANDONED_AFTER_S:
        return True
    if run.worker_host != host or run.worker_pid is None:
        return False
    return silent >= stale_after and not pid_alive(run.worker_pid)


def recover_stale_runs(registry: Registry, stale_after: float = STALE_AFTER_S) -> list[int]:
    """Mark runs of dead workers interrupted (or cancelled, if that was asked); their ids."""
    now = time.time()
    host = socket.gethostname()
    with registry.read() as session:
        running = session.scalars(select(Run).where(Run.status == "running")).all()
    orphans = [run for run in running if is_orphaned(run, now, stale_after, host)]
    recovered = []
    for run in orphans:
        reason = (
            f"worker (pid {run.worker_pid} on {run.worker_host}) stopped at step {run.progress_step}; "
            "resume continues from the last checkpoint"
        )
        with registry.write() as session:
            # Unchanged heartbeat: the worker did not come back to life since we looked.
            result = session.execute(
                update(Run)
                .where(
                    Run.id == run.id, Run.status == "running", Run.heartbeat_at.is_not_distinct_from(run.heartbeat_at)
                )
                .values(
                    status=case((Run.cancel_requested, "cancelled"), else_="interrupted"),
                    finished_at=now,
                    error=reason,
                    crashes=Run.crashes + 1,
                )
            )
            if result.rowcount:
                recovered.append(run.id)
    return recovered
