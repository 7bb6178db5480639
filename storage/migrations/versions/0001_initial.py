"""Initial registry: runs, metrics, samples, checkpoints, prompt sets.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("model", sa.String(500), nullable=False),
        sa.Column("prompt_set", sa.String(200)),
        sa.Column("rewards", sa.JSON, nullable=False),
        sa.Column("algorithm", sa.String(100), nullable=False),
        sa.Column("folder", sa.String(300), nullable=False),
        sa.Column("device", sa.String(50)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("worker_pid", sa.Integer),
        sa.Column("worker_host", sa.String(200)),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("progress_step", sa.Integer, nullable=False),
        sa.Column("progress_total", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("name", name="uq_runs_name"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("wall_time", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metrics_run_id_runs", ondelete="CASCADE"),
    )
    op.create_index("ix_metrics_run_id", "metrics", ["run_id"])
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("wall_time", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_samples"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_samples_run_id_runs", ondelete="CASCADE"),
    )
    op.create_index("ix_samples_run_step", "samples", ["run_id", "step"])
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("folder", sa.String(500), nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("lora_path", sa.String(500)),
        sa.Column("sha256", sa.String(64)),
        sa.Column("wall_time", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_checkpoints_run_id_runs", ondelete="CASCADE"),
    )
    op.create_index("ix_checkpoints_run_step", "checkpoints", ["run_id", "step"])
    op.create_table(
        "prompt_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prompts", sa.JSON, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prompt_sets"),
        sa.UniqueConstraint("name", name="uq_prompt_sets_name"),
    )


def downgrade() -> None:
    for table in ("prompt_sets", "checkpoints", "samples", "metrics", "runs"):
        op.drop_table(table)
