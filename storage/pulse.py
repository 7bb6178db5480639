"""Cheap "did anything change?" reads for pages that poll while runs train.

A page compares the pulse it read last with a fresh one and reloads only the parts whose pulse
moved (curves, gallery, table), so a tick with nothing new costs a few indexed aggregates instead
of full curve and table loads. Each pulse is read before the data it guards, so data loaded after
it is never older than the pulse a page remembers: a change is at worst shown one tick late.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from .liveness import recover_stale_runs
from .registry import open_registry
from .runs import Home, RunRef, find_run_row
from .schema import Metric, Run, Sample

ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class RunPulse:
    """One run's moving parts. `metrics` and `samples` are (rows, newest step): the row count
    also moves when a step gains rows late (evaluation metrics of an earlier step) or loses them
    (a resumed run rewinds to its checkpoint)."""

    id: int
    status: str
    progress_step: int
    progress_total: int | None
    cancel_requested: bool
    error: str | None
    metrics: tuple[int, int | None]
    samples: tuple[int, int | None]

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class RunsPulse:
    """What the Runs table shows that can change: per listed run (id, name, status, progress,
    total, cancel requested, error), the metric rows of active runs (best reward, gold) and how
    many runs are active anywhere in the registry."""

    rows: tuple[tuple, ...]
    active_metrics: tuple[tuple[int, int, int | None], ...]
    active_runs: int

    @property
    def active(self) -> bool:
        return self.active_runs > 0


def _active_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Run).where(Run.status.in_(ACTIVE))) or 0


def any_active(home: Home) -> bool:
    """Whether a run is queued or running anywhere (dead workers' runs are settled first)."""
    registry = open_registry(home)
    recover_stale_runs(registry)
    with registry.read() as session:
        return _active_count(session) > 0


def run_pulse(home: Home, run: RunRef) -> RunPulse:
    registry = open_registry(home)
    recover_stale_runs(registry)  # a dead worker's run must not look "running, unchanged" forever
    with registry.read() as session:
        row = find_run_row(session, run)
        counts = []
        for table in (Metric, Sample):  # both served by a (run_id, step, …) index
            rows, newest = session.execute(
                select(func.count(), func.max(table.step)).where(table.run_id == row.id)
            ).one()
            counts.append((rows, newest))
        return RunPulse(
            id=row.id, status=row.status, progress_step=row.progress_step, progress_total=row.progress_total,
            cancel_requested=bool(row.cancel_requested), error=row.error, metrics=counts[0], samples=counts[1],
        )  # fmt: skip


def runs_pulse(home: Home, limit: int | None = None) -> RunsPulse:
    """The pulse of the newest `limit` runs (the rows a table of that size shows)."""
    registry = open_registry(home)
    recover_stale_runs(registry)
    with registry.read() as session:
        rows = tuple(
            tuple(r)
            for r in session.execute(
                select(
                    Run.id, Run.name, Run.status, Run.progress_step, Run.progress_total, Run.cancel_requested, Run.error
                )
                .order_by(Run.id.desc())
                .limit(limit)
            )
        )
        active_ids = [r[0] for r in rows if r[2] in ACTIVE]
        metrics = ()
        if active_ids:
            metrics = tuple(
                tuple(r)
                for r in session.execute(
                    select(Metric.run_id, func.count(), func.max(Metric.step))
                    .where(Metric.run_id.in_(active_ids))
                    .group_by(Metric.run_id)
                    .order_by(Metric.run_id)
                )
            )
        active_runs = _active_count(session)
    return RunsPulse(rows, metrics, active_runs)
