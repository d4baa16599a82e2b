"""One configuration value at a time: parse it, check it, or raise a ConfigError that names
where it came from (`config.yaml: scrape.targets[2].interval`, `CONTROLPLANE_PORT`). Durations
use Prometheus syntax and are held as float seconds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from controlplane.collect.scrape import ScrapeTarget
from controlplane.errors import ConfigError
from controlplane.model import yamltext
from controlplane.model.regex import RegexError, anchored
from controlplane.model.times import format_duration, parse_duration
from controlplane.promql.limits import DEPTH_CEILING

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TARGET_KEYS = ("job", "url", "interval", "timeout", "labels", "honor_labels")


def region_urls(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """`{eu: url}` in a file, `eu=url,latam=url` in the environment."""
    if isinstance(value, str):
        pairs = [part.strip().partition("=") for part in value.split(",") if part.strip()]
        if any(not sep or not k.strip() or not v.strip() for k, sep, v in pairs):
            raise ConfigError(f"{where}: {value!r} is not region=url[,region=url...]")
        value = {k.strip(): v.strip() for k, _sep, v in pairs}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {value!r} is not a mapping of region to admin URL")
    return tuple((str(k), opt_base_url(v, f"{where}.{k}") or "") for k, v in value.items())


def targets(value: Any, where: str, interval: float, timeout: float) -> tuple[ScrapeTarget, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {value!r} is not a list of targets")
    out: list[ScrapeTarget] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        one = target(raw, at, interval, timeout)
        if (one.job, one.url) in seen:
            raise ConfigError(f"{at}: duplicate target {one.job!r} {one.url!r}")
        seen.add((one.job, one.url))
        out.append(one)
    return tuple(out)


def target(raw: Any, where: str, interval: float, timeout: float) -> ScrapeTarget:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {raw!r} is not a mapping with job and url")
    for key in raw:
        if key not in TARGET_KEYS:
            raise ConfigError(f"{where}.{key}: unknown field (expected one of {TARGET_KEYS})")
    for key in ("job", "url"):
        if key not in raw:
            raise ConfigError(f"{where}.{key}: missing")
    own_interval = "interval" in raw and raw["interval"] is not None
    interval = duration(raw["interval"], f"{where}.interval") if own_interval else interval
    if raw.get("timeout") is not None:
        timeout = duration(raw["timeout"], f"{where}.timeout")
        if timeout > interval:
            raise ConfigError(
                f"{where}.timeout: {raw['timeout']!r} is longer than the interval "
                f"{format_duration(interval)!r}"
            )
    # as Prometheus does: an inherited timeout never exceeds the target's own interval
    timeout = min(timeout, interval)
    if interval <= 0:
        raise ConfigError(f"{where}.interval: {raw.get('interval')!r} must be more than 0s")
    own = labels(raw.get("labels") or {}, f"{where}.labels")
    honor = raw.get("honor_labels", False)
    if not isinstance(honor, bool):
        raise ConfigError(f"{where}.honor_labels: {honor!r} is not true or false")
    return ScrapeTarget(
        job=text(raw["job"], f"{where}.job"),
        url=metrics_url(raw["url"], f"{where}.url"),
        interval_s=interval,
        timeout_s=timeout,
        # as a Prometheus relabelling would: an `instance` label replaces host:port
        instance=own.pop("instance", ""),
        labels=own,
        honor_labels=honor,
    )


def labels(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {raw!r} is not a mapping of label names to values")
    for name, value in raw.items():
        if not isinstance(name, str) or not LABEL_NAME.match(name) or name.startswith("__"):
            raise ConfigError(f"{where}: {name!r} is not a valid label name")
        if name == "job":
            raise ConfigError(f"{where}.job: set the target's job, not a job label")
        if isinstance(value, dict | list):
            raise ConfigError(f"{where}.{name}: {value!r} is not a label value")
    return dict(sorted(yamltext.texts(raw).items()))


def duration(value: Any, where: str) -> float:
    try:
        if isinstance(value, str | int) and not isinstance(value, bool):
            return parse_duration(str(value))
    except ValueError:
        pass
    raise ConfigError(f"{where}: {value!r} is not a duration")


def positive_duration(value: Any, where: str) -> float:
    seconds = duration(value, where)
    if seconds <= 0:
        raise ConfigError(f"{where}: {value!r} must be more than 0s")
    return seconds


def history_resolution(
    seconds: float, where: str, *, retention_s: float, lookback_s: float
) -> None:
    """The long-term tier's resolution against the settings it must fit in."""
    # a bucket is downsampled when the raw floor passes it: it must be complete by then
    if seconds > retention_s:
        raise ConfigError(
            f"{where}: {format_duration(seconds)!r} is longer than store.retention "
            f"{format_duration(retention_s)!r}"
        )
    # old samples sit one resolution apart: a longer gap than the lookback leaves holes
    if seconds > lookback_s:
        raise ConfigError(
            f"{where}: {format_duration(seconds)!r} is longer than query.lookback "
            f"{format_duration(lookback_s)!r}: instant queries over old data would find gaps"
        )


def opt_regex(value: Any, where: str) -> str | None:
    """A regular expression (RE2, as PromQL's `=~`); null or empty: none."""
    if value is None or value == "":
        return None
    pattern = text(value, where)
    try:
        anchored(pattern)
    except RegexError as exc:
        raise ConfigError(
            f"{where}: {pattern!r} is not a valid regular expression: {exc}"
        ) from None
    return pattern


def port(value: Any, where: str) -> int:
    try:
        port = int(str(value), 10)
    except ValueError:
        port = -1
    if isinstance(value, bool) or not 0 <= port <= 65535:
        raise ConfigError(f"{where}: {value!r} is not a port")
    return port


def positive_int(value: Any, where: str) -> int:
    try:
        number = int(str(value).replace("_", ""), 10)
    except ValueError:
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ConfigError(f"{where}: {value!r} is not a positive integer")
    return number


def query_depth(value: Any, where: str) -> int:
    number = positive_int(value, where)
    if number > DEPTH_CEILING:
        raise ConfigError(
            f"{where}: {value!r} is more than {DEPTH_CEILING}, the deepest nesting the PromQL "
            "parser and evaluator handle safely"
        )
    return number


def text(value: Any, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ConfigError(f"{where}: {value!r} is not a non-empty string")
    return str(value)


def opt_text(value: Any, where: str) -> str | None:
    return None if value is None or value == "" else text(value, where)


def path(value: Any, where: str) -> Path:
    return Path(text(value, where))


def opt_path(value: Any, where: str) -> Path | None:
    return None if value is None or value == "" else path(value, where)


def http_url(value: Any, where: str) -> tuple[str, str, str, str, str]:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {value!r} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError(f"{where}: {value!r} has an invalid port") from None
    return parts.scheme, parts.netloc, parts.path, parts.query, parts.fragment


def metrics_url(value: Any, where: str) -> str:
    scheme, netloc, path, query, _ = http_url(value, where)
    return urlunsplit((scheme, netloc, path or "/metrics", query, ""))


def opt_base_url(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    scheme, netloc, path, _, _ = http_url(value, where)
    return urlunsplit((scheme, netloc, path.rstrip("/"), "", ""))


def api_base_url(value: Any, where: str) -> str:
    """An http(s) base URL ending in `/`, as slack_sdk's `base_url` wants it."""
    scheme, netloc, path, _, _ = http_url(value, where)
    return urlunsplit((scheme, netloc, path.rstrip("/") + "/", "", ""))
