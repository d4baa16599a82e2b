"""The automation kill switch and maintenance windows, kept with the executions' tables."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from controlplane.runbooks.store import metadata

automation = sa.Table(
    "automation_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("changed_by", sa.String(200), nullable=False),
    sa.Column("changed_at", sa.Float, nullable=False),
)
maintenance = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("matchers", sa.Text, nullable=False),
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)


class Switches:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def automation(self) -> tuple[bool, str, str, float]:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(automation).where(automation.c.id == 1)).first()
        return (
            (False, "", "", 0.0)
            if row is None
            else (row.paused, row.reason, row.changed_by, row.changed_at)
        )

    def set_automation(self, *, paused: bool, reason: str, by: str) -> None:
        values = dict(paused=paused, reason=reason, changed_by=by, changed_at=self._clock())
        with self._engine.begin() as conn:
            if (
                conn.execute(
                    automation.update().where(automation.c.id == 1).values(**values)
                ).rowcount
                == 0
            ):
                conn.execute(automation.insert().values(id=1, **values))

    def add_maintenance(
        self, *, matchers: Mapping[str, str], starts_at: float, ends_at: float, reason: str, by: str
    ) -> str:
        window_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            conn.execute(
                maintenance.insert().values(
                    id=window_id,
                    matchers=json.dumps(dict(matchers), sort_keys=True),
                    starts_at=starts_at,
                    ends_at=ends_at,
                    reason=reason,
                    created_by=by,
                )
            )
        return window_id

    def maintenance_windows(self, *, active_at: float | None = None) -> list[dict[str, Any]]:
        query = sa.select(maintenance)
        if active_at is not None:
            query = query.where(maintenance.c.ends_at > active_at)
        with self._engine.connect() as conn:
            return [
                {**r._asdict(), "matchers": json.loads(r.matchers)} for r in conn.execute(query)
            ]

    def end_maintenance(self, window_id: str) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                maintenance.update()
                .where(maintenance.c.id == window_id)
                .values(ends_at=self._clock())
            )
        return done.rowcount == 1
