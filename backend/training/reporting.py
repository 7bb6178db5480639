"""What the trainer tells the outside world, and what it asks of it.

The trainer talks only to a `Reporter`: metrics, samples, checkpoints, progress, and control
flags it polls (cancel, save a checkpoint now, sample now). `JsonlReporter` writes JSON lines in
the run folder; the SQLite run registry provides another implementation. Nothing else crosses.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from ..records import CheckpointRecord, ControlFlags, SampleRecord

__all__ = ["CheckpointRecord", "ControlFlags", "JsonlReporter", "Reporter", "SampleRecord", "read_jsonl"]


class Reporter(Protocol):
    def metrics(self, step: int, values: dict[str, float]) -> None: ...

    def samples(self, step: int, records: list[SampleRecord]) -> None: ...

    def checkpoint(self, record: CheckpointRecord) -> None: ...

    def progress(self, step: int, total: int) -> None:
        """Called once per iteration; doubles as the heartbeat."""

    def rewind(self, step: int) -> None:
        """Forget metrics and samples logged after `step` (resume from that checkpoint)."""

    def poll(self) -> ControlFlags:
        """Control flags set by a front end: save_now and sample_now are consumed when returned;
        cancel and stop stay set (the run is ending)."""

    def flush(self) -> None: ...


class JsonlReporter:
    """Metrics, samples and checkpoints as JSON lines under the run folder; no control flags."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def _append(self, name: str, row: dict) -> None:
        with open(self.run_dir / name, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self._append("metrics.jsonl", {"step": step, "time": time.time(), **values})

    def samples(self, step: int, records: list[SampleRecord]) -> None:
        for record in records:
            self._append("samples.jsonl", {"step": step, **asdict(record)})

    def checkpoint(self, record: CheckpointRecord) -> None:
        self._append("checkpoints.jsonl", asdict(record))

    def progress(self, step: int, total: int) -> None:
        pass

    def rewind(self, step: int) -> None:
        for name in ("metrics.jsonl", "samples.jsonl", "checkpoints.jsonl"):
            path = self.run_dir / name
            if path.exists():
                rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
                kept = [row for row in rows if row["step"] <= step]
                path.write_text("".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8")

    def poll(self) -> ControlFlags:
        return ControlFlags()

    def flush(self) -> None:
        pass


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
