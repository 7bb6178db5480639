"""What front ends do with runs (through backend.actions): insert, list, inspect, control, resume, delete, export.

Every function takes the home folder (a path, None for the default, or an open Registry) and
runs short transactions. Listing and inspecting first settle runs whose worker died, so no front
end ever shows a crashed run as "running".
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..backend.files import sha256_file
from .home import run_folder_name
from .liveness import recover_stale_runs
from .paths import clean_file_name, inside
from .registry import Registry, RegistryError, open_registry
from .schema import Checkpoint, Metric, Run, Sample
from .workers import ensure_worker

__all__ = [
    "RunInfo", "RunNotFound", "cancel_run", "delete_run", "ensure_worker", "export_lora", "get_run",
    "insert_run", "list_runs", "request_sample", "request_save", "resume_run",
]  # fmt: skip

Home = Registry | str | os.PathLike | None
RunRef = int | str


class RunNotFound(RegistryError):
    pass


@dataclass(frozen=True)
class RunInfo:
    id: int
    name: str
    status: str
    model: str
    algorithm: str
    prompt_set: str | None
    rewards: list[dict[str, Any]]
    config: dict[str, Any]
    folder: Path
    device: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress_step: int
    progress_total: int | None
    error: str | None
    worker_pid: int | None
    heartbeat_at: float | None
    cancel_requested: bool

    @classmethod
    def from_row(cls, run: Run, registry: Registry) -> RunInfo:
        values = {name: getattr(run, name) for name in cls.__dataclass_fields__ if name != "folder"}
        return cls(folder=registry.run_path(run.folder, checked=False), **values)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "folder": str(self.folder)}


def _unique_name(session: Session, wanted: str) -> str:
    taken = set(session.scalars(select(Run.name).where(Run.name.like(f"{wanted}%"))))
    name, number = wanted, 1
    while name in taken:
        number += 1
        name = f"{wanted}-{number}"
    return name


def insert_run(home: Home, config: dict[str, Any], prompt_set: str | None = None) -> int:
    """Queue a run whose `config` is complete and already checked (see backend.actions.queue_run,
    which every front end calls); the run id. The registry trusts it: it knows tables, not
    settings. The name (`config["name"]`) is made unique with -2, -3, ..."""
    registry = open_registry(home)
    with registry.write() as session:
        final = _unique_name(session, config["name"])
        run = Run(
            name=final,
            status="queued",
            config={**config, "name": final},
            model=str(config["model"]),
            prompt_set=prompt_set,
            rewards=list(config["rewards"]),
            algorithm=str(config["algorithm"]),
            folder="",
            created_at=time.time(),
            progress_step=0,
            progress_total=int(config["iterations"]),
        )
        session.add(run)
        session.flush()  # assigns the id the folder name needs
        # Stored relative to the runs folder, so machines that mount it at different paths agree.
        run.folder = f"runs/{run_folder_name(run.id, final)}"
        run_id = run.id
    registry.run_path(run.folder).mkdir(parents=True, exist_ok=True)
    return run_id


def find_run_row(session: Session, ref: RunRef) -> Run:
    if isinstance(ref, int) or str(ref).isdigit():
        run = session.get(Run, int(ref))
    else:
        run = session.scalars(select(Run).where(Run.name == ref)).one_or_none()
    if run is None:
        raise RunNotFound(f"no run {ref!r}; `ngrpo runs list` shows them")
    return run


def list_runs(home: Home = None, status: str | None = None, limit: int | None = None) -> list[RunInfo]:
    """Newest first; at most `limit` (a page of a big registry stays fast)."""
    registry = open_registry(home)
    recover_stale_runs(registry)
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Run.status == status)
    with registry.read() as session:
        return [RunInfo.from_row(run, registry) for run in session.scalars(query)]


def get_run(home: Home, run: RunRef) -> RunInfo:
    registry = open_registry(home)
    recover_stale_runs(registry)
    with registry.read() as session:
        return RunInfo.from_row(find_run_row(session, run), registry)


def cancel_run(home: Home, run: RunRef) -> RunInfo:
    """A queued or interrupted run is cancelled at once; a running one after its next checkpoint."""
    registry = open_registry(home)
    recover_stale_runs(registry)
    with registry.write() as session:
        row = find_run_row(session, run)
        if row.status in ("queued", "interrupted"):
            row.status, row.finished_at = "cancelled", time.time()
        elif row.status == "running":
            row.cancel_requested = True
        else:
            raise RegistryError(f"run {row.name!r} is already {row.status}")
        return RunInfo.from_row(row, registry)


def resume_run(home: Home, run: RunRef) -> RunInfo:
    """Queue an interrupted, failed or cancelled run again; the trainer continues from its last
    checkpoint. Call `ensure_worker` afterwards (front ends do) so someone picks it up."""
    registry = open_registry(home)
    recover_stale_runs(registry)
    with registry.write() as session:
        row = find_run_row(session, run)
        if row.status not in ("interrupted", "failed", "cancelled"):
            hint = " (queue a new run to train further)" if row.status == "finished" else ""
            raise RegistryError(
                f"run {row.name!r} is {row.status}; only interrupted, failed or cancelled runs resume{hint}"
            )
        row.status, row.error, row.finished_at, row.worker_pid = "queued", None, None, None
        row.crashes = 0  # a person asked for it: a fresh allowance of automatic restarts
        row.cancel_requested = row.save_requested = row.sample_requested = False
        return RunInfo.from_row(row, registry)


def _request(home: Home, run: RunRef, flag: str) -> RunInfo:
    registry = open_registry(home)
    with registry.write() as session:
        row = find_run_row(session, run)
        if row.status != "running":
            raise RegistryError(f"run {row.name!r} is {row.status}, not running")
        setattr(row, flag, True)
        return RunInfo.from_row(row, registry)


def request_save(home: Home, run: RunRef) -> RunInfo:
    """Ask the worker for a checkpoint at the end of the current iteration."""
    return _request(home, run, "save_requested")


def request_sample(home: Home, run: RunRef) -> RunInfo:
    """Ask the worker for evaluation samples at the end of the current iteration."""
    return _request(home, run, "sample_requested")


def delete_run(home: Home, run: RunRef) -> None:
    """Forget a run that is not running, and delete its folder (images, checkpoints, LoRAs)."""
    registry = open_registry(home)
    recover_stale_runs(registry)
    with registry.write() as session:
        row = find_run_row(session, run)
        if row.status == "running":
            raise RegistryError(f"run {row.name!r} is running; cancel it first")
        folder = registry.run_path(row.folder).resolve()
        for table in (Metric, Sample, Checkpoint):
            session.execute(delete(table).where(table.run_id == row.id))
        session.delete(row)
    # Never follow a damaged path out of the runs folder.
    if row.folder and folder.is_relative_to(registry.runs_dir.resolve()) and folder.exists():
        shutil.rmtree(folder)


def export_lora(home: Home, run: RunRef, step: int | None = None, out: str | os.PathLike | None = None) -> Path:
    """Copy the LoRA of checkpoint `step` (default: the newest with one) to `out` (a file or a
    folder such as ComfyUI's loras folder; default: the current folder); the copy's path.

    The copy is checked against the hash recorded at checkpoint time, so a damaged file is never
    handed out as a working LoRA.
    """
    registry = open_registry(home)
    with registry.read() as session:
        row = find_run_row(session, run)
        query = select(Checkpoint).where(Checkpoint.run_id == row.id, Checkpoint.lora_path.is_not(None))
        if step is not None:
            query = query.where(Checkpoint.step == step)
        checkpoint = session.scalars(query.order_by(Checkpoint.step.desc()).limit(1)).one_or_none()
        name, folder = row.name, row.folder
    if checkpoint is None:
        at = f" at step {step}" if step is not None else ""
        raise RunNotFound(f"run {name!r} has no checkpoint with a LoRA{at}")
    source = inside(registry.run_path(folder), checkpoint.lora_path, "LoRA path")
    if not source.exists():
        raise FileNotFoundError(f"the LoRA of run {name!r} step {checkpoint.step} is missing: {source}")
    default_name = clean_file_name(f"{name}-step{checkpoint.step}") + ".safetensors"
    target = Path(out) if out is not None else Path.cwd() / default_name
    if target.is_dir():
        target = target / default_name
    return _copy_verified(source, target, checkpoint.sha256, f"the LoRA of run {name!r} step {checkpoint.step}")


def _copy_verified(source: Path, target: Path, sha256: str | None, what: str) -> Path:
    """Copy to a temporary name beside `target`, check the hash, then rename into place: a
    reader (ComfyUI scanning its loras folder) never sees a half-written or damaged file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(source, temporary)
        if sha256 is not None and sha256_file(temporary) != sha256:
            raise RegistryError(f"{what} does not match its recorded sha256; the checkpoint file is damaged")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
