"""Alembic migrations of the control plane database, run in code (no alembic.ini).

Beside `api` and `backtest`: imports the tables of notify, runbooks and audit it migrates.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def target_metadata() -> list[sa.MetaData]:
    """Every table the control plane owns, for autogenerate comparisons."""
    from controlplane import audit
    from controlplane.access import session
    from controlplane.notify import nflog, outbox, silences, slack  # noqa: F401  (outbox: tables)
    from controlplane.runbooks import store, switches  # noqa: F401  (switches adds its tables)
    from controlplane.slack import tables as slack_buttons

    return [
        audit.metadata,
        nflog.metadata,  # the notification log and the outbox (outbox.py adds its tables)
        session.metadata,
        silences.metadata,
        slack.metadata,
        store.metadata,
        slack_buttons.metadata,  # spent button nonces, acknowledgements
    ]
