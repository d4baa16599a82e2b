"""The slash command: `/cp status`, `pause [reason]`, `resume`, `silence <matchers>
<duration>`, `run <runbook> [label=value ...] [--dry-run]`.

The person is the Slack user who typed it (their `slack_id` in config/access.yml); every
command goes through the same `Operations` call as the HTTP API, and ends in one
`slack_command` audit event with the Slack user, the person, the command and the outcome.
Matchers are Alertmanager's (`alertname=ProviderDown region="eu"`, or `{...}` with commas).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from controlplane.access import Access, AccessError, Permission, User, require
from controlplane.errors import ControlPlaneError
from controlplane.model.times import format_duration, parse_duration
from controlplane.notify.alerts import Alert
from controlplane.notify.matchers import parse_matcher
from controlplane.operate import Operations, SilenceRequest
from controlplane.runbooks.store import State
from controlplane.slack.acks import Acknowledgements
from controlplane.slack.respond import Reply, Target

log = logging.getLogger(__name__)
USAGE = (
    "usage: `status` | `pause [reason]` | `resume` | `silence <matchers> <duration>`"
    " (e.g. `silence alertname=ProviderDown region=eu 2h`)"
    " | `run <runbook> [label=value ...] [--dry-run]`"
)
_SHOWN = 10  # lines of each list in `status`


@dataclass(frozen=True, kw_only=True)
class Command:
    slack_user: str
    text: str
    target: Target
    retry: int = 0


@dataclass(frozen=True, kw_only=True)
class Done:
    code: str  # accepted, help, bad_request, unknown_user, forbidden, conflict
    reply: Reply
    user: str | None = None


class _Stop(Exception):
    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


class Commands:
    def __init__(
        self,
        *,
        ops: Operations,
        access: Callable[[], Access],
        acks: Acknowledgements,
        alerts: Callable[[], Sequence[Alert]] = tuple,
        clock: Callable[[], float] = time.time,
        max_silence_s: float = 30 * 86400.0,
    ) -> None:
        self._ops, self._access, self._acks, self._alerts = ops, access, acks, alerts
        self._clock, self._max_silence_s = clock, max_silence_s

    def run(self, command: Command) -> Done:
        verb, _, rest = command.text.strip().partition(" ")
        verb = verb.lower()
        user: User | None = None
        try:
            if verb in ("", "help"):
                raise _Stop("help", USAGE)
            user = self._access().by_slack_id(command.slack_user)
            if user is None:
                raise _Stop(
                    "unknown_user",
                    "refused: your Slack account is not in the control plane's access file"
                    " (config/access.yml, slack_id)",
                )
            text, code = self._dispatch(verb, rest.strip(), user), "accepted"
        except _Stop as stop:
            text, code = stop.text, stop.code
        except AccessError as exc:
            text, code = f"refused: {exc}", "forbidden"
        except ValueError as exc:
            text, code = f"{exc}\n{USAGE}", "bad_request"
        except ControlPlaneError as exc:  # a conflict: nothing was changed
            text, code = f"not done: {exc}", "conflict"
        except Exception:  # the database boundary: say so, and record what can be recorded
            log.exception("Slack command by %s failed", command.slack_user)
            text, code = "failed: see the control plane's log", "error"
        self._record(command, verb, user, code, text)
        return Done(code=code, reply=Reply(text=text), user=user.name if user else None)

    def _dispatch(self, verb: str, rest: str, user: User) -> str:
        if verb == "status":
            require(user, Permission.READ)
            return self._status()
        if verb == "pause":
            self._ops.pause(user, rest or "paused from Slack")
            return "automation paused: no runbook acts by itself until resumed"
        if verb == "resume":
            self._ops.resume(user)
            return "automation resumed"
        if verb == "silence":
            return self._silence(user, rest)
        if verb == "run":
            return self._run(user, rest)
        raise _Stop("bad_request", f"unknown command {verb!r}\n{USAGE}")

    def _silence(self, user: User, rest: str) -> str:
        words = split_words(rest)
        if len(words) < 2:
            raise ValueError("silence needs matchers and a duration")
        seconds = parse_duration(words[-1])
        if not 0 < seconds <= self._max_silence_s:
            limit = format_duration(self._max_silence_s)
            raise ValueError(f"duration {words[-1]!r} must be more than 0s and at most {limit}")
        matchers = [parse_matcher(w) for w in words[:-1]]
        silence = self._ops.silence(
            user,
            SilenceRequest(
                matchers=matchers,
                ends_at=datetime.fromtimestamp(self._clock(), UTC) + timedelta(seconds=seconds),
                comment=f"silenced for {words[-1]} from Slack",
            ),
        )
        shown = ", ".join(silence.matcher_strings)
        return f"silenced {shown} for {words[-1]} ({silence.id[:8]})"

    def _run(self, user: User, rest: str) -> str:
        words = split_words(rest)
        dry_run = "--dry-run" in words
        words = [w for w in words if w != "--dry-run"]
        if not words:
            raise ValueError("run needs a runbook name")
        labels = _labels(words[1:])
        ex = self._ops.run(user, words[0], labels=labels, params={}, dry_run=dry_run)
        why = f" ({ex.reason})" if ex.reason else ""
        verb = "planned (dry run, nothing changed)" if dry_run else "started"
        return f"{words[0]} {verb}: {ex.state.value}{why}; execution {ex.id}"

    def _status(self) -> str:
        paused, reason, by, _at = self._ops.switches.automation()
        lines = [f"automation: paused by {by} ({reason})" if paused else "automation: on"]
        pending = self._ops.executions.find(states=[State.PENDING_APPROVAL], limit=_SHOWN + 1)
        lines.append(f"waiting for approval: {len(pending)}")
        for ex in pending[:_SHOWN]:
            lines.append(f"• {ex.runbook} on {ex.target_key} ({ex.id}), {len(ex.approvals)} so far")
        now = datetime.fromtimestamp(self._clock(), UTC)
        firing = [a for a in self._alerts() if not a.resolved_at(now)]
        lines.append(f"firing alerts: {len(firing)}")
        for name, count in _by_name(firing)[:_SHOWN]:
            lines.append(f"• {name}: {count}")
        for ack in self._acks.all()[:_SHOWN]:
            lines.append(f"on it: {ack.user} for {ack.group_key}")
        return "\n".join(lines)

    def _record(self, command: Command, verb: str, user: User | None, code: str, text: str) -> None:
        data: dict[str, object] = {
            "slack_user": command.slack_user,
            "user": user.name if user else None,
            "command": verb[:40],
            "text": command.text[:200],
            "outcome": code,
            "detail": text[:500],
        }
        if command.retry:
            data["retry"] = command.retry
        self._ops.audit.append(
            "slack_command", data, actor=user.name if user else f"slack:{command.slack_user}"[:200]
        )


def split_words(text: str) -> list[str]:
    """Words split at spaces, commas and braces outside double quotes (`{a="x y", b=~"z"}`
    and `a="x y" b=~z` are the same two matchers)."""
    words: list[str] = []
    current: list[str] = []
    inside = escaped = False
    for ch in text:
        if ch in " \t\n,{}" and not inside:
            if current:
                words.append("".join(current))
            current = []
            continue
        if ch == '"' and not escaped:
            inside = not inside
        escaped = ch == "\\" and not escaped
        current.append(ch)
    if current:
        words.append("".join(current))
    return words


def _labels(words: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for word in words:
        matcher = parse_matcher(word)
        if matcher.op.value != "=":
            raise ValueError(f"labels are name=value, got {word!r}")
        labels[matcher.name] = matcher.value
    return labels


def _by_name(alerts: Sequence[Alert]) -> list[tuple[str, int]]:
    tally: dict[str, int] = {}
    for alert in alerts:
        name = alert.label_map.get("alertname", "?")
        tally[name] = tally.get(name, 0) + 1
    return sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))
