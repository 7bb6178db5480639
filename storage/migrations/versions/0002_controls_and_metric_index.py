"""Control flags on runs (cancel, save now, sample now); one metric row per (run, step, name).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FLAGS = ("cancel_requested", "save_requested", "sample_requested")


def upgrade() -> None:
    for flag in FLAGS:
        op.add_column("runs", sa.Column(flag, sa.Boolean, nullable=False, server_default=sa.false()))
    # Registries written before this revision may hold a step twice (a resume without rewind);
    # keep the newest row of each so the unique index can be built.
    op.execute("DELETE FROM metrics WHERE id NOT IN (SELECT MAX(id) FROM metrics GROUP BY run_id, step, name)")
    op.drop_index("ix_metrics_run_id", table_name="metrics")
    op.create_index("ux_metrics_run_step_name", "metrics", ["run_id", "step", "name"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_metrics_run_step_name", table_name="metrics")
    op.create_index("ix_metrics_run_id", "metrics", ["run_id"])
    with op.batch_alter_table("runs") as batch:
        for flag in FLAGS:
            batch.drop_column(flag)
