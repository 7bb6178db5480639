"""`RegistryReporter`: the trainer's Reporter, writing into the registry.

Metrics are buffered and written in batches (every `flush_rows` rows or `flush_seconds`, and
always together with a checkpoint), so a fast training loop costs a few short write transactions
per minute and readers never wait on it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..backend.records import CheckpointRecord, ControlFlags, SampleRecord
from .claims import check_owner
from .liveness import WorkerIdentity
from .registry import Registry
from .schema import Checkpoint, Metric, Run, Sample


class RegistryReporter:
    def __init__(
        self,
        registry: Registry,
        run_id: int,
        flush_rows: int = 500,
        flush_seconds: float = 5.0,
        progress_seconds: float = 1.0,
        owner: WorkerIdentity | None = None,
    ):
        self.registry = registry
        self.run_id = run_id
        self.owner = owner  # when set, every write first checks that this worker still owns the run
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.progress_seconds = progress_seconds
        self._rows: list[dict] = []
        self._last_flush = time.monotonic()
        self._last_progress = float("-inf")
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a trainer may report from a background thread (async evaluation)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction that a stale trainer cannot use (see claims.check_owner)."""
        with self.registry.write() as session:
            if self.owner is not None:
                check_owner(session, self.run_id, self.owner)
            yield session

    def request_stop(self) -> None:
        """Ask the trainer to checkpoint and return (worker shutdown); safe from a signal handler."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def metrics(self, step: int, values: dict[str, float]) -> None:
        now = time.time()
        # NaN would reach SQLite as NULL and fail the whole batch; a non-finite metric carries no
        # value to plot, so it is left out (the trainer fails a run whose loss or gradient diverges).
        rows = [
            {"run_id": self.run_id, "step": step, "name": name, "value": float(value), "wall_time": now}
            for name, value in values.items()
            if math.isfinite(float(value))
        ]
        with self._lock:
            self._rows.extend(rows)
            due = len(self._rows) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds
        if due:
            self.flush()

    def _write_metrics(self, session: Session) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            self._last_flush = time.monotonic()
        if rows:
            # A metric logged twice for one step keeps its last value instead of failing the run.
            insert = postgresql.insert if self.registry.dialect == "postgresql" else sqlite.insert
            statement = insert(Metric)
            statement = statement.on_conflict_do_update(
                index_elements=["run_id", "step", "name"],
                set_={"value": statement.excluded.value, "wall_time": statement.excluded.wall_time},
            )
            session.execute(statement, rows)

    def flush(self) -> None:
        with self._write() as session:
            self._write_metrics(session)

    def samples(self, step: int, records: list[SampleRecord]) -> None:
        now = time.time()
        with self._write() as session:
            session.add_all(
                Sample(
                    run_id=self.run_id, step=step, prompt=r.prompt, seed=r.seed, path=r.path,
                    scores={k: (float(v) if math.isfinite(float(v)) else None) for k, v in r.scores.items()},
                    wall_time=now,
                )
                for r in records
            )  # fmt: skip

    def checkpoint(self, record: CheckpointRecord) -> None:
        # The metrics up to this step land in the same transaction: after a crash, what the
        # registry shows never lags behind the checkpoint a resume continues from.
        sha256 = record.files.get(Path(record.lora_path).name) if record.lora_path else None
        with self._write() as session:
            self._write_metrics(session)
            run_folder = self.registry.run_path(session.scalar(select(Run.folder).where(Run.id == self.run_id)))
            mine = select(Checkpoint).where(Checkpoint.run_id == self.run_id)
            for row in session.scalars(mine):
                # A re-save of a step replaces its row; checkpoints the trainer pruned from disk
                # must not stay listed as exportable.
                if row.step == record.step or not (run_folder / row.folder).exists():
                    session.delete(row)
            session.add(
                Checkpoint(
                    run_id=self.run_id, step=record.step, folder=record.folder, files=dict(record.files),
                    lora_path=record.lora_path, sha256=sha256, wall_time=time.time(),
                )
            )  # fmt: skip

    def progress(self, step: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_progress < self.progress_seconds and step < total:
            return
        self._last_progress = now
        with self._write() as session:
            session.execute(
                update(Run)
                .where(Run.id == self.run_id, Run.status == "running")
                .values(progress_step=step, progress_total=total, heartbeat_at=time.time())
            )

    def rewind(self, step: int) -> None:
        with self._lock:
            self._rows = [row for row in self._rows if row["step"] <= step]
        with self._write() as session:
            for table in (Metric, Sample, Checkpoint):
                session.execute(delete(table).where(table.run_id == self.run_id, table.step > step))
            session.execute(update(Run).where(Run.id == self.run_id).values(progress_step=step))

    def poll(self) -> ControlFlags:
        """save_now and sample_now are consumed; cancel and stop stay set once raised (the run is
        ending, and a trainer that polls again must not forget it)."""
        with self.registry.read() as session:
            cancel, save, sample = session.execute(
                select(Run.cancel_requested, Run.save_requested, Run.sample_requested).where(Run.id == self.run_id)
            ).one()
        if save or sample:
            with self._write() as session:
                save, sample = session.execute(
                    select(Run.save_requested, Run.sample_requested).where(Run.id == self.run_id)
                ).one()
                session.execute(
                    update(Run).where(Run.id == self.run_id).values(save_requested=False, sample_requested=False)
                )
        return ControlFlags(cancel=bool(cancel), stop=self.stop_requested, save_now=bool(save), sample_now=bool(sample))
