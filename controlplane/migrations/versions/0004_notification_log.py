"""the notification log and the outbox in the database: a restart (or another replica) neither
forgets what it told people nor tells them twice, and a decided notification is delivered
whatever happens to the process that decided it (notify/nflog.py, notify/outbox.py)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "notify_log",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("receiver", sa.String(255), nullable=False),
        sa.Column("integration", sa.String(100), nullable=False),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("firing", sa.JSON, nullable=False),
        sa.Column("resolved", sa.JSON, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outbox_id", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_notify_log_sent_at", "notify_log", ["sent_at"])
    op.create_table(
        "notify_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("log_key", sa.String(64), nullable=False),
        sa.Column("receiver", sa.String(255), nullable=False),
        sa.Column("integration", sa.String(100), nullable=False),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("route_key", sa.Text, nullable=False),
        sa.Column("group_labels", sa.JSON, nullable=False),
        sa.Column("alerts", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pace_key", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_notify_outbox_log_key", "notify_outbox", ["log_key"])
    op.create_index("ix_notify_outbox_due", "notify_outbox", ["state", "next_attempt_at"])
    op.create_table(
        "notify_pace",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("notify_pace", "notify_outbox", "notify_log"):
        op.drop_table(table)
