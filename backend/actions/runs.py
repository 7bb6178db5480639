"""Runs in the registry: the table, one run in full, and the controls (cancel, resume, delete,
checkpoint now, sample now)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ...storage import history, pulse, runs
from ...storage.pulse import RunPulse, RunsPulse
from ...storage.runs import RunInfo
from ...storage.workers import ensure_worker
from .errors import action

Home = str | os.PathLike | None
RunRef = int | str


@dataclass(frozen=True)
class RunRow:
    """One line of the Runs table."""

    id: int
    name: str
    status: str
    model: str
    algorithm: str
    step: int
    total: int | None
    eta_s: float | None  # running runs only: remaining iterations × mean time per iteration so far
    best_reward: float | None  # best held-out (evaluation) reward so far
    gold: float | None  # latest held-out gold metric
    created_at: float
    note: str  # the error or the reason it stopped, one line


def _eta(run: RunInfo, now: float) -> float | None:
    if run.status != "running" or not run.started_at or not run.progress_total or run.progress_step < 1:
        return None
    per_iteration = (now - run.started_at) / run.progress_step
    return per_iteration * max(0, run.progress_total - run.progress_step)


@action
def list_runs(home: Home = None, status: str | None = None, limit: int | None = 200) -> list[RunRow]:
    """Newest first, at most `limit` rows; dead workers' runs are settled first, so a crashed run
    never shows as running."""
    infos = runs.list_runs(home, status=status, limit=limit)
    ids = [info.id for info in infos]
    best = history.metric_extremes(home, ids, "eval/reward")
    gold = history.metric_extremes(home, ids, "eval/gold")
    now = time.time()
    return [
        RunRow(
            id=info.id, name=info.name, status=info.status, model=info.model, algorithm=info.algorithm,
            step=info.progress_step, total=info.progress_total, eta_s=_eta(info, now),
            best_reward=best[info.id][0] if info.id in best else None,
            gold=gold[info.id][1] if info.id in gold else None, created_at=info.created_at,
            note=(info.error or "").splitlines()[0][:120] if info.error else
            ("cancel requested" if info.cancel_requested and info.status == "running" else ""),
        )
        for info in infos
    ]  # fmt: skip


@action
def run_infos(home: Home = None, status: str | None = None) -> list[RunInfo]:
    """Every run's full record (config included), newest first: what scripts read."""
    return runs.list_runs(home, status=status)


@action
def any_active(home: Home = None) -> bool:
    """Whether a run is queued or running (front ends poll only while this holds)."""
    return pulse.any_active(home)


@action
def run_pulse(home: Home, run: RunRef) -> RunPulse:
    """A cheap read of what moves while `run` trains (status, progress, metric and image rows):
    a polling page compares it with the last one it saw and reloads only what changed."""
    return pulse.run_pulse(home, run)


@action
def runs_pulse(home: Home = None, limit: int | None = 200) -> RunsPulse:
    """The same for the Runs table (the newest `limit` runs, as `list_runs` lists them)."""
    return pulse.runs_pulse(home, limit)


@dataclass(frozen=True)
class RunDetail:
    info: RunInfo
    latest_metrics: dict[str, tuple[int, float]]  # name → (step, value)
    checkpoints: list[history.CheckpointInfo]
    eta_s: float | None = None  # as in RunRow


@action
def show_run(home: Home, run: RunRef) -> RunDetail:
    info = runs.get_run(home, run)
    latest, checkpoints = history.latest_metrics(home, info.id), history.list_checkpoints(home, info.id)
    return RunDetail(info, latest, checkpoints, _eta(info, time.time()))


@action
def get_run(home: Home, run: RunRef) -> RunInfo:
    return runs.get_run(home, run)


@action
def cancel_run(home: Home, run: RunRef) -> RunInfo:
    """A queued or interrupted run is cancelled at once; a running one after its next checkpoint."""
    return runs.cancel_run(home, run)


@action
def resume_run(home: Home, run: RunRef, start_worker: bool = True) -> tuple[RunInfo, int | None]:
    """Queue an interrupted, failed or cancelled run again (it continues from its last
    checkpoint); with `start_worker`, the pid of a worker started for it, if one had to be."""
    info = runs.resume_run(home, run)
    return info, ensure_worker(home) if start_worker else None


@action
def delete_run(home: Home, run: RunRef) -> RunInfo:
    """Forget a run that is not running and delete its folder; what it was."""
    info = runs.get_run(home, run)
    runs.delete_run(home, info.id)
    return info


@action
def request_checkpoint(home: Home, run: RunRef) -> RunInfo:
    """Ask a running run for a checkpoint at the end of its current iteration."""
    return runs.request_save(home, run)


@action
def request_samples(home: Home, run: RunRef) -> RunInfo:
    """Ask a running run for evaluation images at the end of its current iteration."""
    return runs.request_sample(home, run)
