"""initial schema: silences, runbook executions and steps, automation switch, maintenance
windows, and the append-only hash-chained audit log

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from controlplane.audit import APPEND_ONLY_DDL

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "notify_silences",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("matchers", sa.JSON, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_index("ix_notify_silences_ends_at", "notify_silences", ["ends_at"])
    op.create_table(
        "executions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("runbook", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("target_key", sa.String(300), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("alert_fingerprint", sa.String(64), nullable=True),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("approvals", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("deadline", sa.Float, nullable=True),
        sa.Column("resolved_done", sa.Boolean, nullable=False),
    )
    for column in ("runbook", "state", "alert_fingerprint"):
        op.create_index(f"ix_executions_{column}", "executions", [column])
    op.create_table(
        "execution_steps",
        sa.Column("execution_id", sa.String(36), sa.ForeignKey("executions.id"), primary_key=True),
        sa.Column("phase", sa.String(20), primary_key=True),
        sa.Column("step_id", sa.String(200), primary_key=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(300), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_table(
        "automation_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.Float, nullable=False),
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_execution_id", "audit_events", ["execution_id"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for statement in APPEND_ONLY_DDL.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade() -> None:
    for table in (
        "audit_head",
        "audit_events",
        "maintenance_windows",
        "automation_state",
        "execution_steps",
        "executions",
        "notify_silences",
    ):
        op.drop_table(table)
