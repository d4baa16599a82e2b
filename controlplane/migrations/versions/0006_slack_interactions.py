"""Slack's buttons and commands: spent button nonces (a button acts once, across restarts and
replicas) and acknowledgements (who is on an alert group, until it resolves)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "slack_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("spender", sa.String(64), primary_key=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("spent_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_slack_nonces_expires_at", "slack_nonces", ["expires_at"])
    op.create_table(
        "acknowledgements",
        sa.Column("group_digest", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(200), primary_key=True),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("slack_user", sa.String(64), nullable=True),
        sa.Column("acknowledged_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("acknowledgements")
    op.drop_index("ix_slack_nonces_expires_at", table_name="slack_nonces")
    op.drop_table("slack_nonces")
