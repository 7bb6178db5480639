"""The worker's side of a run's life: claim it, keep it alive, settle it.

Every statement is guarded by `status='running' AND worker_pid=<ours>`: once a front end has
declared a run orphaned (see liveness.py), a worker that wakes up again cannot overwrite it.
"""

from __future__ import annotations

import time

from sqlalchemy import select, update

from .liveness import WorkerIdentity
from .registry import Registry
from .schema import Run

FINAL_STATUSES = ("finished", "failed", "cancelled", "interrupted")


def claim_next_run(registry: Registry, worker: WorkerIdentity) -> int | None:
    """Atomically take the oldest queued run; its id, or None when the queue is empty."""
    # SKIP LOCKED (PostgreSQL; SQLite ignores it, its write lock already serializes claims): a
    # claimer never waits on, or re-reads, a row another claimer is taking.
    oldest = (
        select(Run.id)
        .where(Run.status == "queued")
        .order_by(Run.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return _claim(registry, worker, oldest)


def claim_run(registry: Registry, worker: WorkerIdentity, run_id: int) -> int | None:
    """Atomically take one particular queued run (a foreground `ngrpo train`); None if it is not
    queued any more (a worker took it first)."""
    return _claim(registry, worker, run_id)


def _claim(registry: Registry, worker: WorkerIdentity, run_id) -> int | None:
    now = time.time()
    with registry.write() as session:
        return session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "queued")
            .values(
                status="running",
                worker_pid=worker.pid,
                worker_host=worker.host,
                device=worker.device,
                started_at=now,
                heartbeat_at=now,
                finished_at=None,
                error=None,
            )
            .returning(Run.id)
        ).scalar_one_or_none()


def _ours(run_id: int, worker: WorkerIdentity):
    return (Run.id == run_id, Run.status == "running", Run.worker_pid == worker.pid, Run.worker_host == worker.host)


def beat(registry: Registry, run_id: int, worker: WorkerIdentity) -> bool:
    """Refresh the heartbeat; False when the run is no longer ours (declared dead meanwhile)."""
    with registry.write() as session:
        result = session.execute(update(Run).where(*_ours(run_id, worker)).values(heartbeat_at=time.time()))
    return result.rowcount == 1


def settle_run(
    registry: Registry,
    run_id: int,
    worker: WorkerIdentity,
    status: str,
    step: int | None = None,
    error: str | None = None,
) -> bool:
    if status not in FINAL_STATUSES:
        raise ValueError(f"a run ends as one of {FINAL_STATUSES}, not {status!r}")
    # A worker that settles a run was alive to the end: the run's crash streak is over.
    values = {"status": status, "finished_at": time.time(), "heartbeat_at": time.time(), "error": error, "crashes": 0}
    if step is not None:
        values["progress_step"] = step
    with registry.write() as session:
        result = session.execute(update(Run).where(*_ours(run_id, worker)).values(**values))
    return result.rowcount == 1


class RunTaken(RuntimeError):
    """This worker no longer owns the run (it was declared dead and the run resumed elsewhere)."""


def check_owner(session, run_id: int, worker: WorkerIdentity) -> None:
    """Inside a write transaction: stop a stale trainer before it writes over a resumed run."""
    if session.scalar(select(Run.id).where(*_ours(run_id, worker))) is None:
        raise RunTaken(
            f"run {run_id} is no longer owned by worker pid {worker.pid} on {worker.host}; "
            "it was declared dead and the run moved on, so this trainer stops without writing"
        )


def requeue_crashed_runs(registry: Registry, max_restarts: int) -> tuple[list[int], list[int]]:
    """Queue again the runs a dead worker left interrupted; fail those that died more than
    `max_restarts` times in a row. Returns (requeued ids, failed ids)."""
    requeued, failed = [], []
    with registry.write() as session:
        crashed = session.scalars(select(Run).where(Run.status == "interrupted", Run.crashes > 0)).all()
        for run in crashed:
            if run.crashes <= max_restarts:
                run.status, run.finished_at, run.worker_pid = "queued", None, None
                requeued.append(run.id)
            else:
                run.status = "failed"
                run.error = f"its worker died {run.crashes} times in a row (limit {max_restarts}); last: {run.error}"
                failed.append(run.id)
    return requeued, failed
