"""Block Kit buttons for the Slack messages, each carrying a signed token (tokens.py).

    buttons = Buttons(signer, runbooks=lambda: remediator.runbooks.values())
    buttons.for_group(view)       # Silence 1h/4h, Acknowledge, Pause automation, Run <runbook>
    buttons.for_execution(ex)     # Approve, Reject (while it waits for approval)
    decided_blocks(blocks, ex)    # the message's blocks once it is decided: no buttons left

The message renderer (notify/slack_blocks.py) takes `for_group` as its `actions` hook and puts
the elements in an `actions` block; `group_block` / `execution_block` build whole blocks for
callers that want them. A decided, rejected or expired request has its buttons replaced by a
line saying so (`decided_blocks`), for chat.update wherever the decision was made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from controlplane.notify.alerts import Alert, common
from controlplane.runbooks.model import Mode, Runbook
from controlplane.runbooks.store import Execution, State
from controlplane.slack.acks import GroupLike
from controlplane.slack.tokens import Action, Signer, TokenTooLong

log = logging.getLogger(__name__)

GROUP_BLOCK = "cp-group"
MAX_ELEMENTS = 25  # Block Kit: an actions block holds at most 25 elements
_MAX_TEXT = 75  # Block Kit: a button's text holds at most 75 characters
_RUNNABLE = (Mode.MANUAL, Mode.APPROVAL)

Block = dict[str, Any]


def approval_block_id(execution_id: str) -> str:
    return f"cp-approval:{execution_id}"


def note_block_id(execution_id: str) -> str:
    return f"cp-approval-note:{execution_id}"


class Buttons:
    def __init__(
        self,
        signer: Signer,
        *,
        runbooks: Callable[[], Iterable[Runbook]] = tuple,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer, self._runbooks, self._clock = signer, runbooks, clock

    def for_group(self, group: GroupLike) -> list[Block]:
        """The buttons of a notification group with firing alerts ([] when all resolved)."""
        key = str(group.key)
        now = datetime.fromtimestamp(self._clock(), UTC)
        firing = [a for a in group.alerts if not a.resolved_at(now)]
        if not firing:
            return []
        elements: list[Block | None] = []
        matchers = _silence_matchers(firing, dict(group.key.labels))
        if matchers:
            for action, label in ((Action.SILENCE_1H, "1h"), (Action.SILENCE_4H, "4h")):
                elements.append(
                    self._button(action, key, f"Silence {label}", {"matchers": matchers})
                )
        elements.append(self._button(Action.ACKNOWLEDGE, key, "Acknowledge"))
        elements.append(
            self._button(
                Action.PAUSE,
                key,
                "Pause automation",
                confirm=("Pause automation?", "No runbook acts by itself until resumed."),
            )
        )
        elements.extend(self._runs(key, firing))
        return [e for e in elements if e is not None][:MAX_ELEMENTS]

    def for_execution(self, ex: Execution) -> list[Block]:
        """Approve and Reject, valid until the execution's approval deadline."""
        if ex.state is not State.PENDING_APPROVAL:
            return []
        expiry = ex.deadline if ex.deadline is not None else None
        approve = self._button(Action.APPROVE, ex.id, "Approve", style="primary", expires_at=expiry)
        reject = self._button(Action.REJECT, ex.id, "Reject", style="danger", expires_at=expiry)
        return [e for e in (approve, reject) if e is not None]

    def group_block(self, group: GroupLike) -> Block | None:
        elements = self.for_group(group)
        if not elements:
            return None
        return {"type": "actions", "block_id": GROUP_BLOCK, "elements": elements}

    def execution_block(self, ex: Execution) -> Block | None:
        elements = self.for_execution(ex)
        if not elements:
            return None
        return {"type": "actions", "block_id": approval_block_id(ex.id), "elements": elements}

    def _runs(self, key: str, firing: Sequence[Alert]) -> list[Block | None]:
        runs: list[Block | None] = []
        for rb in sorted(self._runbooks(), key=lambda r: r.name):
            if rb.mode not in _RUNNABLE or rb.trigger is None:
                continue
            alert = next((a for a in firing if rb.trigger.matches(a.label_map)), None)
            if alert is None:
                continue
            runs.append(
                self._button(
                    Action.RUN,
                    key,
                    f"Run {rb.name}",
                    {"runbook": rb.name, "labels": alert.label_map},
                    action_id=f"cp:run:{rb.name}"[:255],
                    confirm=(f"Run {rb.name}?"[:100], rb.description[:300] or rb.name),
                )
            )
        return runs

    def _button(
        self,
        action: Action,
        subject: str,
        text: str,
        params: Mapping[str, Any] | None = None,
        *,
        style: str | None = None,
        expires_at: float | None = None,
        action_id: str | None = None,
        confirm: tuple[str, str] | None = None,
    ) -> Block | None:
        try:
            value = self.signer.sign(action, subject, params, expires_at=expires_at)
        except TokenTooLong as exc:  # a group with very many labels: no button, not a broken one
            log.warning("no %s button: %s", action.value, exc)
            return None
        button: Block = {
            "type": "button",
            "action_id": action_id or f"cp:{action.value}",
            "text": {"type": "plain_text", "text": _clip(text, _MAX_TEXT)},
            "value": value,
        }
        if style:
            button["style"] = style
        if confirm:
            button["confirm"] = _confirm(*confirm)
        return button


def decision_text(ex: Execution) -> str | None:
    """What replaces an execution's buttons once it is decided; None while it still waits."""
    approvers = ", ".join(str(a.get("user")) for a in ex.approvals)
    if ex.state is State.PENDING_APPROVAL:
        return None
    if ex.state is State.REJECTED:
        return f":no_entry: {ex.reason or 'rejected'}"
    if ex.state is State.EXPIRED:
        return ":hourglass: expired: not approved in time"
    if ex.state is State.REFUSED and approvers:
        return f":white_check_mark: approved by {approvers}, then refused: {ex.reason}"
    if approvers:
        return f":white_check_mark: approved by {approvers}: {ex.state.value}"
    return f"{ex.state.value}: {ex.reason}".rstrip(": ")


def progress_text(ex: Execution) -> str | None:
    """Approvals so far, while more are needed."""
    if ex.state is not State.PENDING_APPROVAL or not ex.approvals:
        return None
    names = ", ".join(str(a.get("user")) for a in ex.approvals)
    return f"approved so far by {names}; waiting for another approver"


def decided_blocks(blocks: Sequence[Block], ex: Execution) -> list[Block]:
    """The message's blocks with this execution's buttons replaced by its decision (or, while
    it waits, followed by who approved so far). Other blocks are kept as they are."""
    done, progress = decision_text(ex), progress_text(ex)
    out: list[Block] = []
    for block in blocks:
        block_id = block.get("block_id")
        if block_id == note_block_id(ex.id):
            continue  # rewritten below
        if block_id != approval_block_id(ex.id):
            out.append(block)
            continue
        if done is not None:
            out.append(_context(approval_block_id(ex.id), done))
            continue
        out.append(block)
        if progress is not None:
            out.append(_context(note_block_id(ex.id), progress))
    return out


def _silence_matchers(firing: Sequence[Alert], group_labels: Mapping[str, str]) -> dict[str, str]:
    """What a silence from the message matches: the labels its firing alerts share (they
    include the group's labels), as Alertmanager's commonLabels."""
    shared = common([a.labels for a in firing])
    return shared or dict(group_labels)


def _context(block_id: str, text: str) -> Block:
    return {
        "type": "context",
        "block_id": block_id,
        "elements": [{"type": "mrkdwn", "text": _clip(text, 3000)}],
    }


def _confirm(title: str, text: str) -> Block:
    return {
        "title": {"type": "plain_text", "text": _clip(title, 100)},
        "text": {"type": "plain_text", "text": _clip(text, 300)},
        "confirm": {"type": "plain_text", "text": "Yes"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
