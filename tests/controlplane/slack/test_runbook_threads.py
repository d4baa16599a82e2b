"""A runbook's story in its alert's Slack thread: the remediator as the pipeline wires it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from controlplane import audit
from controlplane.config import Config, SlackConfig
from controlplane.notify import receivers
from controlplane.notify.slack import build_notifier
from controlplane.promql.results import QueryResult, ResultType
from controlplane.runbooks.act import ActionRunner, AggregatorTargets
from controlplane.runbooks.engine import AlertEvent, Remediator
from controlplane.runbooks.load import load_runbook
from controlplane.runbooks.store import ExecutionStore, metadata
from controlplane.runbooks.switches import Switches
from controlplane.slack.messaging import SlackMessaging, build_messaging
from tests.controlplane.slack.standin_helpers import (
    TOKEN,
    Standin,
    alert,
    send,
    served_standin,
)

RUNBOOK = """
name: tell-oncall
description: says what it would do
trigger: {alert: ProviderDown}
mode: MODE
steps:
  - id: tell
    action: notify
    with: {severity: info, message: "looking at {{ $labels.provider }}"}
"""


class NoQueries:
    def instant(self, expr: str, time_ms: int) -> QueryResult:
        return QueryResult(result_type=ResultType.VECTOR, vector=[])

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        return QueryResult(result_type=ResultType.MATRIX, matrix=[])


@pytest.fixture
def standin() -> Iterator[Standin]:
    yield from served_standin()


def wired(standin: Standin, tmp_path: Path, mode: str) -> tuple[SlackMessaging, Remediator]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cp.db'}")
    metadata.create_all(engine)
    audit.install(engine)
    config = Config(
        slack=SlackConfig(api_url=standin.api_url, bot_token=TOKEN),
        external_url="http://cp.example:8000",
    )
    messaging = build_messaging(config, engine=engine)
    assert messaging is not None
    messaging.messages.create_tables()
    path = tmp_path / "rb.yaml"
    path.write_text(RUNBOOK.replace("MODE", mode))
    runner = ActionRunner(AggregatorTargets(), NoQueries(), notify=messaging.notify)  # type: ignore[arg-type]
    remediator = Remediator(
        [load_runbook(path)],
        ExecutionStore(engine),
        Switches(engine),
        audit.AuditLog(engine),
        runner,
        notify=messaging.notify,
    )
    return messaging, remediator


def fire(messaging: SlackMessaging, standin: Standin, remediator: Remediator) -> Any:
    firing = alert("pgsoft")
    slack = build_notifier(receivers.SlackConfig(channel="#alerts"), messaging.context)
    send(slack, [firing])  # type: ignore[arg-type]
    event = AlertEvent(
        labels=firing.label_map, fingerprint=firing.fingerprint, firing=True, active_at=time.time()
    )
    return remediator.on_alert(event)


def thread(standin: Standin) -> list[str]:
    group = standin.messages()[0]
    return [m["text"] for m in standin.messages() if m["thread_ts"] == group["ts"]]


def test_an_automatic_run_is_told_step_by_step(standin: Standin, tmp_path: Path) -> None:
    messaging, remediator = wired(standin, tmp_path, "auto")
    [execution] = fire(messaging, standin, remediator)
    assert messaging.threads.drain() == 0
    assert thread(standin) == [
        "runbook tell-oncall on none/eu/pgsoft: running",
        "looking at pgsoft",
        "runbook tell-oncall on none/eu/pgsoft: steps step tell (notify) done",
        "runbook tell-oncall on none/eu/pgsoft: succeeded (all steps done)",
    ]
    automation = messaging.automation([alert("pgsoft")])
    assert [(e.id, e.state) for e in automation.executions] == [(execution.id, "succeeded")]


def test_an_approval_is_asked_and_answered_in_the_thread(standin: Standin, tmp_path: Path) -> None:
    messaging, remediator = wired(standin, tmp_path, "approval")
    [execution] = fire(messaging, standin, remediator)
    remediator.approve(execution.id, "alice")
    messaging.threads.drain()
    told = thread(standin)
    assert told[0] == "runbook tell-oncall on none/eu/pgsoft: pending_approval"
    assert told[1] == "runbook tell-oncall on none/eu/pgsoft: approved by alice (1/1)"
    assert told[-1] == "runbook tell-oncall on none/eu/pgsoft: succeeded (all steps done)"


def test_shadow_mode_says_what_it_would_have_done(standin: Standin, tmp_path: Path) -> None:
    messaging, remediator = wired(standin, tmp_path, "shadow")
    fire(messaging, standin, remediator)
    messaging.threads.drain()
    [told] = thread(standin)
    assert told.startswith(
        "runbook tell-oncall on none/eu/pgsoft: shadowed would have done: notify"
    )


def test_no_bot_token_no_messaging(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cp.db'}")
    assert build_messaging(Config(), engine=engine) is None
