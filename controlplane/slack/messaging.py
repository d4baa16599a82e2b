"""The Slack messages wired to the rest: what pipeline.py builds when a bot token is set.

    messaging = build_messaging(config, engine=db, clock=clock)    # None without a bot token
    Remediator(..., notify=messaging.notify)      # the log, and the alert's Slack thread
    build_notify(..., slack=messaging.context)    # slack_configs' notifier: client, store, hooks
    messaging.use_buttons(slack.buttons)          # once the interactivity exists (it needs ops)
    start, stop = messaging.around(start, stop)   # the thread-reply worker lives with the pipeline

It joins notify/ (the messages, which may not import runbooks) to runbooks/ (the executions
that follow-ups and the messages' automation line speak of), so it sits above both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from controlplane.config import Config
from controlplane.notify.alerts import Alert
from controlplane.notify.slack import SlackContext, SlackMessages, web_client
from controlplane.notify.slack_blocks import Automation, Block, ExecutionRef, MessageView
from controlplane.notify.slack_threads import SlackThreads, fan_out
from controlplane.runbooks.act import log_notification
from controlplane.runbooks.store import ExecutionStore
from controlplane.runbooks.switches import Switches
from controlplane.slack.buttons import Buttons

log = logging.getLogger(__name__)
Lifecycle = Callable[[], None]


class SlackMessaging:
    def __init__(self, config: Config, *, engine: Engine, clock: Callable[[], float]) -> None:
        assert config.slack.bot_token
        client = web_client(config.slack.api_url, config.slack.bot_token)
        self.messages = SlackMessages(engine, clock)
        # stateless views of the same tables the remediator writes
        self._executions, self._switches = ExecutionStore(engine, clock), Switches(engine, clock)
        self._buttons: Buttons | None = None
        self.context = SlackContext(
            client=client,
            messages=self.messages,
            actions=self._group_buttons,
            automation=self.automation,
        )
        self.threads = SlackThreads(
            client,
            self.messages,
            alert_of=self.alert_of,
            external_url=config.external_url,
            reply_actions=self._execution_buttons,
        )
        self.notify = fan_out(log_notification, self.threads.notify)

    def use_buttons(self, buttons: Buttons) -> None:
        self._buttons = buttons

    def alert_of(self, context: Mapping[str, Any]) -> str | None:
        """The fingerprint of the alert that triggered a follow-up's execution, if any."""
        execution_id = context.get("execution_id")
        if not execution_id and context.get("step"):  # a runbook's `notify` step: its key
            execution_id = str(context["step"]).split(":", 1)[0]
        ex = self._executions.get(str(execution_id)) if execution_id else None
        return ex.alert_fingerprint if ex is not None else None

    def automation(self, alerts: Sequence[Alert]) -> Automation:
        """The kill switch and the latest execution of each of the group's alerts."""
        paused, reason, by, _ = self._switches.automation()
        refs = []
        for alert in alerts:
            for ex in self._executions.find(fingerprint=alert.fingerprint, limit=1):
                refs.append(
                    ExecutionRef(
                        id=ex.id, runbook=ex.runbook, state=ex.state.value, target=ex.target_key
                    )
                )
        return Automation(
            paused=paused, reason=f"{reason} ({by})" if paused else "", executions=tuple(refs)
        )

    def around(self, start: Lifecycle, stop: Lifecycle) -> tuple[Lifecycle, Lifecycle]:
        """The pipeline's start and stop, with the thread-reply worker: after the schema is
        migrated, and stopped before the database is let go."""

        def started() -> None:
            start()
            self.threads.start()

        def stopped() -> None:
            self.threads.stop()
            stop()

        return started, stopped

    def _group_buttons(self, view: MessageView) -> list[Block]:
        return self._buttons.for_group(view) if self._buttons is not None else []

    def _execution_buttons(self, context: Mapping[str, Any]) -> list[Block]:
        """Approve and Reject under the reply that asks for them, while still pending."""
        if self._buttons is None or context.get("state") != "pending_approval":
            return []
        ex = self._executions.get(str(context.get("execution_id")))
        block = self._buttons.execution_block(ex) if ex is not None else None
        return [block] if block is not None else []


def build_messaging(
    config: Config, *, engine: Engine, clock: Callable[[], float] = time.time
) -> SlackMessaging | None:
    """None without a bot token: slack_configs then fail, as their notifier says why."""
    if not config.slack.bot_token:
        return None
    return SlackMessaging(config, engine=engine, clock=clock)
