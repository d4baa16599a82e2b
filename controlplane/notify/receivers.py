"""Receivers and their integrations as configured (what to build, not the senders themselves).

Each `*_configs` key of a receiver has a parser in `INTEGRATIONS`; a new kind of notifier
(Slack) adds its key and parser there, and its factory in `notifiers.build_integrations`.
A receiver with no integrations is valid and drops what it gets, as in Alertmanager.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


INTEGRATIONS: Mapping[str, IntegrationParser] = {
    "webhook_configs": parse_webhook,
    "log_configs": parse_log,
}
