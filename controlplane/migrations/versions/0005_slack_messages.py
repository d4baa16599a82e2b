"""where each alert group's Slack message is (channel id and ts), so that a restart or another
replica edits the same message, and a runbook's follow-ups find its thread by fingerprint

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "slack_messages",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fingerprints", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_slack_messages_updated_at", "slack_messages", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_messages_updated_at", table_name="slack_messages")
    op.drop_table("slack_messages")
