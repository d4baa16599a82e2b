"""The two tables Slack's buttons need, so that what they decide holds across restarts and
replicas: spent nonces (a button acts once) and acknowledgements (who is on an alert group).

Migration 0006 creates them; `controlplane.migrations.target_metadata` includes `metadata`.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# One row per spent (nonce, spender): the primary key is what makes a second spend fail in
# the database itself, whichever replica tries it. `spender` is "*" for a button anyone may
# press once, or the Slack user id for one each person may press once (see tokens.py).
slack_nonces = sa.Table(
    "slack_nonces",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("spender", sa.String(64), primary_key=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("spent_at", sa.Float, nullable=False),
    # after this the token is refused as expired anyway, so the row may go
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

# Who is on an alert group, until it resolves. Group keys can be long (every group_by label),
# so the key is addressed by its SHA-256 and kept in full beside it.
acknowledgements = sa.Table(
    "acknowledgements",
    metadata,
    sa.Column("group_digest", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(200), primary_key=True),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("slack_user", sa.String(64), nullable=True),
    sa.Column("acknowledged_at", sa.Float, nullable=False),
)
