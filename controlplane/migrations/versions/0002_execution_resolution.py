"""executions remember their alert's episode (resolution) and where the alert came from
(alert_source), so a restarted control plane neither re-triggers an alert it is already
handling nor loses the on_resolved steps it owes

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("resolution", sa.String(20), nullable=True))
        batch.add_column(sa.Column("alert_source", sa.String(20), nullable=True))
        batch.create_index("ix_executions_resolution", ["resolution"])
    # Only executions still in flight are taken over: a finished one's alert may have resolved
    # long ago, and running its on_resolved now (a canary restore) could degrade a healthy
    # provider. The source stays unknown, so only a real resolved event ends their episode.
    op.execute(
        "UPDATE executions SET resolution = 'awaiting' WHERE alert_fingerprint IS NOT NULL"
        " AND state IN ('pending_approval', 'running', 'verifying')"
    )


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_index("ix_executions_resolution")
        batch.drop_column("alert_source")
        batch.drop_column("resolution")
