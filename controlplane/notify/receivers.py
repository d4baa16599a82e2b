"""Receivers and their integrations as configured (what to build, not the senders themselves).

Each `*_configs` key of a receiver has a parser in `INTEGRATIONS`; a new kind of notifier
(Slack) adds its key and parser there, and its factory in `notifiers.build_integrations`.
A receiver with no integrations is valid and drops what it gets, as in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from controlplane.errors import ConfigError

Fail = Callable[[str, str], ConfigError]
"""fail(field, message) -> the ConfigError to raise, with the file and the path named."""


class IntegrationConfig(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def send_resolved(self) -> bool: ...


IntegrationParser = Callable[[Mapping[str, Any], Fail], IntegrationConfig]


@dataclass(frozen=True, kw_only=True)
class ReceiverConfig:
    name: str
    integrations: tuple[IntegrationConfig, ...] = ()


@dataclass(frozen=True, kw_only=True)
class WebhookConfig:
    url: str
    send_resolved: bool = True
    max_alerts: int = 0  # 0: all of them
    timeout_s: float = 10.0
    kind: str = "webhook"


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    send_resolved: bool = True
    kind: str = "log"


PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True, kw_only=True)
class PagerDutyConfig:
    """Alertmanager's `pagerduty_configs`, Events API v2 only (routing_key, not service_key).
    Texts are taken as written: Alertmanager's templates are not evaluated here."""

    routing_key: str | None = field(default=None, repr=False)  # a secret
    routing_key_file: str | None = None  # read at each send, so a rotated key is picked up
    url: str = PAGERDUTY_URL
    client: str = "controlplane"
    client_url: str = ""  # default: the control plane's external URL
    description: str = ""  # default: Alertmanager's subject line
    source: str = "controlplane"
    severity: str = "error"
    class_: str = ""
    component: str = ""
    group: str = ""
    details: Mapping[str, str] = field(default_factory=dict)  # added to the default details
    send_resolved: bool = True
    timeout_s: float = 10.0
    kind: str = "pagerduty"


@dataclass(frozen=True, kw_only=True)
class EmailConfig:
    """Alertmanager's `email_configs`, sent with smtplib. `html`/`text` None: the default
    rendering; "" leaves that part out. Not resolved by default, as in Alertmanager."""

    to: str
    from_: str
    smarthost: tuple[str, int]
    hello: str = "localhost"
    auth_username: str | None = None
    auth_password: str | None = field(default=None, repr=False)
    auth_password_file: str | None = None
    require_tls: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    html: str | None = None
    text: str | None = None
    send_resolved: bool = False
    timeout_s: float = 10.0
    kind: str = "email"


def _check_keys(obj: Mapping[str, Any], allowed: tuple[str, ...], fail: Fail) -> None:
    for key in obj:
        if key not in allowed:
            raise fail(str(key), f"unknown or unsupported field (expected one of {allowed})")


def _bool(obj: Mapping[str, Any], key: str, default: bool, fail: Fail) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise fail(key, f"{value!r} is not a boolean")
    return value


def parse_webhook(obj: Mapping[str, Any], fail: Fail) -> WebhookConfig:
    _check_keys(obj, ("url", "send_resolved", "max_alerts", "timeout"), fail)
    url = obj.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail("url", f"{url!r} is not an http(s) URL")
    max_alerts = obj.get("max_alerts", 0)
    if not isinstance(max_alerts, int) or isinstance(max_alerts, bool) or max_alerts < 0:
        raise fail("max_alerts", f"{max_alerts!r} is not a non-negative integer")
    timeout = obj.get("timeout", 10)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise fail("timeout", f"{timeout!r} is not a positive number of seconds")
    return WebhookConfig(
        url=str(url),
        send_resolved=_bool(obj, "send_resolved", True, fail),
        max_alerts=max_alerts,
        timeout_s=float(timeout),
    )


def parse_log(obj: Mapping[str, Any], fail: Fail) -> LogConfig:
    _check_keys(obj, ("send_resolved",), fail)
    return LogConfig(send_resolved=_bool(obj, "send_resolved", True, fail))


def _text(obj: Mapping[str, Any], key: str, default: str | None, fail: Fail) -> Any:
    value = obj.get(key, default)
    if value is not None and not isinstance(value, str):
        raise fail(key, f"{value!r} is not a string")
    return value


def _url(obj: Mapping[str, Any], key: str, default: str | None, fail: Fail) -> str:
    url = obj.get(key, default)
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(key, f"{url!r} is not an http(s) URL")
    return str(url)


def _timeout(obj: Mapping[str, Any], fail: Fail) -> float:
    timeout = obj.get("timeout", 10)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise fail("timeout", f"{timeout!r} is not a positive number of seconds")
    return float(timeout)


def _strings(obj: Mapping[str, Any], key: str, fail: Fail) -> dict[str, str]:
    value = obj.get(key) or {}
    if not isinstance(value, dict):
        raise fail(key, f"{value!r} is not a mapping")
    for name, item in value.items():
        if not isinstance(name, str) or not name or isinstance(item, dict | list):
            raise fail(f"{key}.{name}", f"{item!r} is not a string")
    return {name: "" if item is None else str(item) for name, item in value.items()}


def _secret(obj: Mapping[str, Any], key: str, fail: Fail) -> tuple[str | None, str | None]:
    """`key` or `key_file`, not both (Alertmanager's rule for its secrets)."""
    value = _text(obj, key, None, fail)
    path = _text(obj, f"{key}_file", None, fail)
    if value and path:
        raise fail(key, f"at most one of {key} and {key}_file must be configured")
    return value or None, path or None


_PAGERDUTY_KEYS = (
    "routing_key", "routing_key_file", "url", "client", "client_url", "description", "source",
    "severity", "class", "component", "group", "details", "send_resolved", "timeout",
)  # fmt: skip


def parse_pagerduty(obj: Mapping[str, Any], fail: Fail) -> PagerDutyConfig:
    if "service_key" in obj or "service_key_file" in obj:
        raise fail("service_key", "Events API v1 is not supported: use routing_key (v2)")
    _check_keys(obj, _PAGERDUTY_KEYS, fail)
    key, key_file = _secret(obj, "routing_key", fail)
    if not key and not key_file:
        raise fail("routing_key", "one of routing_key or routing_key_file must be configured")
    severity = _text(obj, "severity", "error", fail)
    if severity not in PAGERDUTY_SEVERITIES:
        raise fail("severity", f"{severity!r} is not one of {PAGERDUTY_SEVERITIES}")
    texts = {k: _text(obj, k, "", fail) for k in ("description", "component", "group")}
    return PagerDutyConfig(
        routing_key=key,
        routing_key_file=key_file,
        url=_url(obj, "url", PAGERDUTY_URL, fail),
        client=_text(obj, "client", "controlplane", fail),
        client_url=_url(obj, "client_url", "", fail) if obj.get("client_url") else "",
        source=_text(obj, "source", "controlplane", fail),
        severity=severity,
        class_=_text(obj, "class", "", fail),
        details=_strings(obj, "details", fail),
        send_resolved=_bool(obj, "send_resolved", True, fail),
        timeout_s=_timeout(obj, fail),
        **texts,
    )


_EMAIL_KEYS = (
    "to", "from", "smarthost", "hello", "auth_username", "auth_password", "auth_password_file",
    "require_tls", "headers", "html", "text", "send_resolved", "timeout",
)  # fmt: skip


def _smarthost(obj: Mapping[str, Any], fail: Fail) -> tuple[str, int]:
    raw = obj.get("smarthost")
    host, _, port = raw.rpartition(":") if isinstance(raw, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail("smarthost", f"{raw!r} is not host:port")
    return host.strip("[]"), int(port)


def parse_email(obj: Mapping[str, Any], fail: Fail) -> EmailConfig:
    _check_keys(obj, _EMAIL_KEYS, fail)
    for key in ("to", "from"):
        value = obj.get(key)
        if not isinstance(value, str) or "@" not in value:
            raise fail(key, f"{value!r} is not an email address")
    password, password_file = _secret(obj, "auth_password", fail)
    username = _text(obj, "auth_username", None, fail)
    if (password or password_file) and not username:
        raise fail("auth_username", "a password needs an auth_username")
    headers = _strings(obj, "headers", fail)
    return EmailConfig(
        to=obj["to"],
        from_=obj["from"],
        smarthost=_smarthost(obj, fail),
        hello=_text(obj, "hello", "localhost", fail),
        auth_username=username or None,
        auth_password=password,
        auth_password_file=password_file,
        require_tls=_bool(obj, "require_tls", True, fail),
        headers={k.title(): v for k, v in headers.items()},  # Go's canonical header names
        html=_text(obj, "html", None, fail),
        text=_text(obj, "text", None, fail),
        send_resolved=_bool(obj, "send_resolved", False, fail),
        timeout_s=_timeout(obj, fail),
    )


# `#name` (posting resolves it; updates use the id Slack answers) or a conversation id
_SLACK_CHANNEL = re.compile(r"#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{6,20}")
# Slack's mention syntax: <!here>, <!channel>, <@U024BE7LH>, <!subteam^S0123ABC>
_SLACK_MENTION = re.compile(
    r"(<(!here|!channel|!everyone|@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)>\s*)+"
)


@dataclass(frozen=True, kw_only=True)
class SlackConfig:
    """One channel; ONE message per alert group, updated in place (notify/slack.py).
    `send_resolved` defaults to true, unlike Alertmanager's: resolving edits the message
    rather than posting another. `title` and `text` replace the header and the summary."""

    channel: str
    send_resolved: bool = True
    title: str = ""
    text: str = ""
    mention: str = ""  # put in front of a firing message, e.g. "<!here>"
    link_names: bool = False
    max_alerts: int = 10  # alerts listed one by one; Slack allows 50 blocks a message
    kind: str = "slack"


def parse_slack(obj: Mapping[str, Any], fail: Fail) -> SlackConfig:
    keys = ("channel", "send_resolved", "title", "text", "mention", "link_names", "max_alerts")
    _check_keys(obj, keys, fail)
    channel = obj.get("channel")
    if not isinstance(channel, str) or not _SLACK_CHANNEL.fullmatch(channel):
        raise fail("channel", f"{channel!r} is not a Slack channel (#name, or an id like C0123ABC)")
    texts = {}
    for key in ("title", "text", "mention"):
        value = obj.get(key, "")
        if not isinstance(value, str):
            raise fail(key, f"{value!r} is not a string")
        if "{{" in value:  # an Alertmanager template would be sent as is: say so now
            raise fail(key, "templates are not expanded here; the message is built from the alerts")
        texts[key] = value.strip()
    if texts["mention"] and not _SLACK_MENTION.fullmatch(texts["mention"]):
        raise fail(
            "mention", f"{texts['mention']!r} is not <!here>, <!channel>, <@U...>, <!subteam^S...>"
        )
    max_alerts = obj.get("max_alerts", 10)
    if not isinstance(max_alerts, int) or isinstance(max_alerts, bool) or not 1 <= max_alerts <= 40:
        raise fail("max_alerts", f"{max_alerts!r} is not an integer from 1 to 40")
    return SlackConfig(
        channel=channel,
        send_resolved=_bool(obj, "send_resolved", True, fail),
        link_names=_bool(obj, "link_names", False, fail),
        max_alerts=max_alerts,
        **texts,
    )


INTEGRATIONS: Mapping[str, IntegrationParser] = {
    "webhook_configs": parse_webhook,
    "log_configs": parse_log,
    "pagerduty_configs": parse_pagerduty,
    "email_configs": parse_email,
    "slack_configs": parse_slack,
}
