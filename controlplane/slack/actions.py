"""A click on one of our buttons, decided: who clicked, may they, is the button still good,
and then the same `Operations` call as the HTTP API and the dashboards.

    outcome = interactions.click(click)     # audited as `slack_click`, accepted or refused

The order matters. The button's token is checked first (ours, unexpired), then the person
(their Slack id in config/access.yml, their role), then the request itself (still pending, not
their own, not already approved by them), and only then is the nonce spent and the operation
run: so a refusal changes nothing, not even the button, and a stranger cannot use a button up
for the people who may press it. Every click ends in one `slack_click` audit event with the
Slack user, the person it maps to (or none), the action, the subject and the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from controlplane.access import Access, AccessError, Permission, User, require
from controlplane.errors import ControlPlaneError
from controlplane.model.series import MatchOp
from controlplane.notify.matchers import new_matcher
from controlplane.operate import Operations, SilenceRequest
from controlplane.runbooks.store import Execution, State
from controlplane.slack.acks import Acknowledgements
from controlplane.slack.buttons import Block, decided_blocks, decision_text
from controlplane.slack.respond import Reply, Target
from controlplane.slack.tokens import Action, BadToken, Nonces, Signer, Token

log = logging.getLogger(__name__)
PERMISSIONS: Mapping[Action, Permission] = {
    Action.APPROVE: Permission.APPROVE,
    Action.REJECT: Permission.REJECT,
    Action.RUN: Permission.RUN,
    Action.SILENCE_1H: Permission.SILENCE,
    Action.SILENCE_4H: Permission.SILENCE,
    Action.ACKNOWLEDGE: Permission.ACKNOWLEDGE,
    Action.PAUSE: Permission.PAUSE,
}
_SILENCE_HOURS = {Action.SILENCE_1H: 1, Action.SILENCE_4H: 4}
_ON_EXECUTIONS = (Action.APPROVE, Action.REJECT)
ACK_BLOCK = "cp-ack"
_MAX_DETAIL = 500


@dataclass(frozen=True, kw_only=True)
class Click:
    slack_user: str
    value: str
    target: Target
    message_blocks: Sequence[Block] | None = None  # the message clicked in, when Slack sent it
    retry: int = 0  # X-Slack-Retry-Num


@dataclass(frozen=True, kw_only=True)
class Outcome:
    code: str  # accepted, or why not: bad_token, expired, unknown_user, forbidden, decided, ...
    reply: Reply
    user: str | None = None


class _Stop(Exception):
    def __init__(self, code: str, text: str, replace: Sequence[Block] | None = None) -> None:
        super().__init__(text)
        self.code, self.text, self.replace = code, text, replace


class Interactions:
    def __init__(
        self,
        *,
        ops: Operations,
        access: Callable[[], Access],
        signer: Signer,
        nonces: Nonces,
        acks: Acknowledgements,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ops, self._access, self._signer = ops, access, signer
        self._nonces, self._acks, self._clock = nonces, acks, clock

    def click(self, click: Click) -> Outcome:
        token: Token | None = None
        user: User | None = None
        try:
            token = self._token(click.value)
            user = self._access().by_slack_id(click.slack_user)
            person = self._may(user, token.action)
            self._still_open(token, person, click)
            if not self._nonces.spend(
                token.nonce,
                token.spender(click.slack_user),
                action=token.action.value,
                expires_at=token.expires_at,
            ):
                raise _Stop("replayed", "this button was already used")
            reply, code = self._act(token, person, click), "accepted"
        except _Stop as stop:
            reply, code = Reply(text=stop.text, replace_blocks=stop.replace), stop.code
        except Exception:  # the database boundary: say so, and record what can be recorded
            log.exception("Slack click by %s failed", click.slack_user)
            reply, code = Reply(text="failed: see the control plane's log"), "error"
        self._record(click, token, user, code, reply.text)
        return Outcome(code=code, reply=reply, user=user.name if user else None)

    def _token(self, value: str) -> Token:
        try:
            token = self._signer.verify(value)
        except BadToken:
            raise _Stop(
                "bad_token", "refused: this button was not made by this control plane"
            ) from None
        if token.expired(self._clock()):
            what = "approval request" if token.action in _ON_EXECUTIONS else "button"
            raise _Stop("expired", f"this {what} has expired: nothing was done")
        return token

    def _may(self, user: User | None, action: Action) -> User:
        if user is None:
            raise _Stop(
                "unknown_user",
                "refused: your Slack account is not in the control plane's access file"
                " (config/access.yml, slack_id)",
            )
        try:
            return require(user, PERMISSIONS[action])
        except AccessError as exc:
            raise _Stop("forbidden", f"refused: {exc}") from None

    def _still_open(self, token: Token, user: User, click: Click) -> None:
        """Approve and reject act on a request that still waits, and not the person's own."""
        if token.action not in _ON_EXECUTIONS:
            return
        ex = self._ops.executions.get(token.subject)
        if ex is None:
            raise _Stop("unknown", f"no such request {token.subject!r}")
        if ex.state is not State.PENDING_APPROVAL:
            raise _Stop(
                "decided" if ex.state is not State.EXPIRED else "expired",
                f"already decided: {decision_text(ex)}; nothing was done",
                _rewritten(click, ex),
            )
        if token.action is Action.APPROVE and ex.requested_by == user.name:
            raise _Stop("forbidden", f"refused: you requested {ex.id} and cannot approve it")
        if token.action is Action.APPROVE and any(a.get("user") == user.name for a in ex.approvals):
            raise _Stop("already_approved", "you have already approved this request")

    def _act(self, token: Token, user: User, click: Click) -> Reply:
        try:
            return self._operate(token, user, click)
        except AccessError as exc:
            raise _Stop("forbidden", f"refused: {exc}") from None
        except (ControlPlaneError, ValueError) as exc:  # a conflict or bad input: nothing done
            raise _Stop("conflict", f"not done: {exc}") from None

    def _operate(self, token: Token, user: User, click: Click) -> Reply:
        action, subject, params = token.action, token.subject, token.params
        if action is Action.APPROVE:
            ex = self._ops.approve(user, subject)
            return Reply(text=_approved_text(ex), replace_blocks=_rewritten(click, ex))
        if action is Action.REJECT:
            ex = self._ops.reject(user, subject, "from Slack")
            return Reply(text="rejected: nothing will run", replace_blocks=_rewritten(click, ex))
        if action is Action.RUN:
            return Reply(text=self._run(user, params))
        if action in _SILENCE_HOURS:
            return Reply(text=self._silence(user, params, _SILENCE_HOURS[action]))
        if action is Action.ACKNOWLEDGE:
            self._acks.acknowledge(user, subject, slack_user=click.target.slack_user)
            names = [a.user for a in self._acks.of(subject)]
            return Reply(
                text="acknowledged: reminders for this group stop until it resolves",
                replace_blocks=_with_ack_note(click.message_blocks, names),
            )
        self._ops.pause(user, "paused from Slack")
        return Reply(text="automation paused: no runbook acts by itself until resumed")

    def _run(self, user: User, params: Mapping[str, Any]) -> str:
        runbook, labels = params.get("runbook"), params.get("labels")
        if not isinstance(runbook, str) or not _str_map(labels):
            raise ValueError("the button's runbook or labels are malformed")
        ex = self._ops.run(user, runbook, labels=labels, params={}, dry_run=False)
        why = f" ({ex.reason})" if ex.reason else ""
        return f"{runbook}: {ex.state.value}{why}; execution {ex.id}"

    def _silence(self, user: User, params: Mapping[str, Any], hours: int) -> str:
        matchers = params.get("matchers")
        if not _str_map(matchers) or not matchers:
            raise ValueError("the button's matchers are malformed")
        silence = self._ops.silence(
            user,
            SilenceRequest(
                matchers=[new_matcher(k, MatchOp.EQ, v) for k, v in sorted(matchers.items())],
                ends_at=datetime.fromtimestamp(self._clock(), UTC) + timedelta(hours=hours),
                comment=f"silenced for {hours}h from Slack",
            ),
        )
        return f"silenced for {hours}h: {', '.join(silence.matcher_strings)} ({silence.id[:8]})"

    def _record(
        self, click: Click, token: Token | None, user: User | None, code: str, text: str
    ) -> None:
        data: dict[str, object] = {
            "slack_user": click.slack_user,
            "user": user.name if user else None,
            "action": token.action.value if token else None,
            "subject": token.subject if token else None,
            "outcome": code,
            "detail": text[:_MAX_DETAIL],
        }
        if click.retry:
            data["retry"] = click.retry
        on_execution = token is not None and token.action in _ON_EXECUTIONS
        self._ops.audit.append(
            "slack_click",
            data,
            actor=user.name if user else f"slack:{click.slack_user}"[:200],
            execution_id=token.subject[:64] if on_execution and token else None,
        )


def _approved_text(ex: Execution) -> str:
    count = len(ex.approvals)
    if ex.state is State.PENDING_APPROVAL:
        return f"approved ({count} so far): waiting for another approver"
    return f"approved: now {ex.state.value}"


def _rewritten(click: Click, ex: Execution) -> list[Block] | None:
    return decided_blocks(click.message_blocks, ex) if click.message_blocks else None


def _with_ack_note(blocks: Sequence[Block] | None, names: Sequence[str]) -> list[Block] | None:
    if not blocks or not names:
        return None
    note = {
        "type": "context",
        "block_id": ACK_BLOCK,
        "elements": [{"type": "mrkdwn", "text": f":eyes: on it: {', '.join(names)}"}],
    }
    return [*(b for b in blocks if b.get("block_id") != ACK_BLOCK), note]


def _str_map(value: object) -> TypeGuard[dict[str, str]]:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )
