"""Reading what a run recorded: metric series, samples, checkpoints (for `runs show`, the
dashboard and ComfyUI nodes). Paths come back absolute; the rows keep them relative."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from .paths import inside
from .registry import open_registry
from .runs import Home, RunRef, find_run_row
from .schema import Checkpoint, Metric, Sample


@dataclass(frozen=True)
class SampleInfo:
    step: int
    prompt: str
    seed: int
    path: Path
    scores: dict[str, float]


@dataclass(frozen=True)
class CheckpointInfo:
    step: int
    folder: Path
    files: dict[str, str]
    lora_path: Path | None
    sha256: str | None
    wall_time: float


def metric_series(
    home: Home, run: RunRef, names: list[str] | None = None, max_points: int | None = None
) -> dict[str, list[tuple[int, float]]]:
    """name → [(step, value)] by step; with `max_points`, every k-th step so plots stay light."""
    registry = open_registry(home)
    with registry.read() as session:
        run_id = find_run_row(session, run).id
        query = select(Metric.name, Metric.step, Metric.value).where(Metric.run_id == run_id)
        if names:
            query = query.where(Metric.name.in_(names))
        if max_points:
            last = session.scalar(select(func.max(Metric.step)).where(Metric.run_id == run_id)) or 0
            stride = max(1, -(-last // max_points))
            query = query.where(Metric.step % stride == 0)
        series: dict[str, list[tuple[int, float]]] = {}
        for name, step, value in session.execute(query.order_by(Metric.name, Metric.step)):
            series.setdefault(name, []).append((step, value))
    return series


def latest_metrics(home: Home, run: RunRef) -> dict[str, tuple[int, float]]:
    """name → (step, value) of its last logged step."""
    registry = open_registry(home)
    with registry.read() as session:
        run_id = find_run_row(session, run).id
        last = (
            select(Metric.name, func.max(Metric.step).label("step"))
            .where(Metric.run_id == run_id)
            .group_by(Metric.name)
        ).subquery()
        rows = session.execute(
            select(Metric.name, Metric.step, Metric.value)
            .join(last, (Metric.name == last.c.name) & (Metric.step == last.c.step))
            .where(Metric.run_id == run_id)
        )
        return {name: (step, value) for name, step, value in rows}


def list_samples(home: Home, run: RunRef, step: int | None = None) -> list[SampleInfo]:
    """Samples of one step (default: the newest step that has any)."""
    registry = open_registry(home)
    with registry.read() as session:
        row = find_run_row(session, run)
        if step is None:
            step = session.scalar(select(func.max(Sample.step)).where(Sample.run_id == row.id))
        query = select(Sample).where(Sample.run_id == row.id, Sample.step == step).order_by(Sample.id)
        folder = registry.run_path(row.folder)
        return [
            SampleInfo(s.step, s.prompt, s.seed, inside(folder, s.path, "sample path"), dict(s.scores))
            for s in session.scalars(query)
        ]


def list_checkpoints(home: Home, run: RunRef) -> list[CheckpointInfo]:
    registry = open_registry(home)
    with registry.read() as session:
        row = find_run_row(session, run)
        folder = registry.run_path(row.folder)
        query = select(Checkpoint).where(Checkpoint.run_id == row.id).order_by(Checkpoint.step)
        return [
            CheckpointInfo(
                step=c.step, folder=inside(folder, c.folder, "checkpoint folder"), files=dict(c.files),
                lora_path=inside(folder, c.lora_path, "LoRA path") if c.lora_path else None, sha256=c.sha256,
                wall_time=c.wall_time,
            )
            for c in session.scalars(query)
        ]  # fmt: skip


def metric_extremes(home: Home, run_ids: list[int], name: str) -> dict[int, tuple[float, float]]:
    """run id → (best value, last value) of metric `name`, for many runs in one query (the Runs
    table). Uses the (run_id, step, name) index: it reads only these runs' rows."""
    if not run_ids:
        return {}
    registry = open_registry(home)
    with registry.read() as session:
        last_step = (
            select(Metric.run_id, func.max(Metric.step).label("step"), func.max(Metric.value).label("best"))
            .where(Metric.run_id.in_(run_ids), Metric.name == name)
            .group_by(Metric.run_id)
        ).subquery()
        rows = session.execute(
            select(Metric.run_id, last_step.c.best, Metric.value).join(
                last_step,
                (Metric.run_id == last_step.c.run_id) & (Metric.step == last_step.c.step) & (Metric.name == name),
            )
        )
        return {run_id: (best, last) for run_id, best, last in rows}


def sample_steps(home: Home, run: RunRef) -> list[int]:
    """The steps that have evaluation images, oldest first."""
    registry = open_registry(home)
    with registry.read() as session:
        run_id = find_run_row(session, run).id
        return list(
            session.scalars(select(Sample.step).where(Sample.run_id == run_id).distinct().order_by(Sample.step))
        )
