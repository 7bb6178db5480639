"""The registry's tables, as of the newest migration (storage/migrations/versions/).

Images and weights stay in files under the run folder; rows hold paths relative to that folder
and hashes. Times are Unix seconds (float) so every front end can compare them without parsing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, MetaData, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names let Alembic alter SQLite tables (batch mode) without guessing.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(String(500))
    prompt_set: Mapped[str | None] = mapped_column(String(200))
    rewards: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    algorithm: Mapped[str] = mapped_column(String(100))
    folder: Mapped[str] = mapped_column(String(300))  # relative to the home folder
    device: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    worker_host: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    save_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    sample_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Consecutive deaths of its worker (reset when a worker settles it): drives automatic resume.
    crashes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Metric(Base):
    __tablename__ = "metrics"
    # Unique per (run, step, name): a resumed run can never show a step twice.
    __table_args__ = (Index("ux_metrics_run_step_name", "run_id", "step", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)


class Sample(Base):
    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500))  # relative to the run folder
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    wall_time: Mapped[float] = mapped_column(Float)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    folder: Mapped[str] = mapped_column(String(500))  # relative to the run folder
    files: Mapped[dict[str, str]] = mapped_column(JSON)  # file name → sha256
    lora_path: Mapped[str | None] = mapped_column(String(500))  # relative to the run folder
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the exported LoRA
    wall_time: Mapped[float] = mapped_column(Float)


class PromptSet(Base):
    __tablename__ = "prompt_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    prompts: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
