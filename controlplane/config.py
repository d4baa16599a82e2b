"""The control plane's configuration: defaults < a YAML file < `CONTROLPLANE_*` environment.

The file is `--config FILE` or `$CONTROLPLANE_CONFIG`. It is read once into frozen dataclasses;
every error names where the value came from (`config.yaml: scrape.targets[2].interval: '5x' is
not a duration`, `CONTROLPLANE_PORT: 'x' is not a port`). Durations use Prometheus syntax
(`15s`, `1m`, `1h30m`) and are held as float seconds.

```yaml
server: {host: 127.0.0.1, port: 8000}
api_token: secret
database_url: sqlite:///var/controlplane.db
scrape:
  interval: 15s
  timeout: 10s
  targets:
    - {job: aggregator, url: "http://127.0.0.1:8101/metrics", interval: 5s, labels: {region: eu}}
store: {retention: 24h, checkpoint_path: var/controlplane-store, checkpoint_interval: 10m}
query: {lookback: 5m, timeout: 2m, max_samples: 50000000, prometheus_url: null}
rules_dir: rules
runbooks_dir: runbooks
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from controlplane.errors import ConfigError
from controlplane.scrape import ScrapeTarget

ENV_PREFIX = "CONTROLPLANE_"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


def parse_duration(text: str) -> float:
    """A Prometheus duration (`1h30m`, `15s`, `0`) in seconds; ValueError when it is not one."""
    match = _DURATION.match(text)
    if text == "0":
        return 0.0
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration")
    ms = sum(int(g) * unit for g, unit in zip(match.groups(), _UNIT_MS, strict=True) if g)
    return ms / 1000


def format_duration(seconds: float) -> str:
    """Prometheus's own rendering (`1m30s`, `0s`), as /api/v1/targets shows intervals."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, suffix in zip(_UNIT_MS, ("y", "w", "d", "h", "m", "s", "ms"), strict=True):
        count, ms = divmod(ms, unit)
        if count:
            out.append(f"{count}{suffix}")
    return "".join(out)


@dataclass(frozen=True, kw_only=True)
class ScrapeConfig:
    interval_s: float = 15.0
    timeout_s: float = 10.0
    targets: tuple[ScrapeTarget, ...] = ()


@dataclass(frozen=True, kw_only=True)
class StoreConfig:
    """`checkpoint_path` is a directory (snapshot + write-ahead log; None keeps nothing);
    `checkpoint_interval_s` is how often a full snapshot is written: the log is synced after
    every scrape anyway, so a restart loses at most about one scrape interval."""

    retention_s: float = 24 * 3600.0
    checkpoint_path: Path | None = Path("var/controlplane-store")
    checkpoint_interval_s: float = 600.0


@dataclass(frozen=True, kw_only=True)
class QueryConfig:
    lookback_s: float = 300.0
    timeout_s: float = 120.0
    max_samples: int = 50_000_000
    prometheus_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000


@dataclass(frozen=True, kw_only=True)
class AutomationConfig:
    """Where runbook actions go, and how much automation may do on its own."""

    frontdoor_url: str | None = None
    region_urls: tuple[tuple[str, str], ...] = ()  # (region id, admin base URL)
    aggregator_token: str | None = None
    budget_max_actions: int = 20
    budget_window_s: float = 600.0


@dataclass(frozen=True, kw_only=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    api_token: str | None = None
    database_url: str = "sqlite:///var/controlplane.db"
    rules_dir: Path = Path("rules")
    runbooks_dir: Path = Path("runbooks")
    routing_file: Path = Path("config/routing.yml")
    external_url: str = "http://127.0.0.1:8000"
    automation: AutomationConfig = field(default_factory=AutomationConfig)


@dataclass(frozen=True)
class _Setting:
    value: Any
    where: str  # "config.yaml: scrape.interval" or "CONTROLPLANE_SCRAPE_INTERVAL"


# dotted key -> environment variable; the YAML sections are the keys' prefixes
_KEYS: dict[str, str] = {
    "server.host": "HOST",
    "server.port": "PORT",
    "api_token": "API_TOKEN",
    "database_url": "DATABASE_URL",
    "rules_dir": "RULES_DIR",
    "runbooks_dir": "RUNBOOKS_DIR",
    "scrape.interval": "SCRAPE_INTERVAL",
    "scrape.timeout": "SCRAPE_TIMEOUT",
    "scrape.targets": "SCRAPE_TARGETS",
    "store.retention": "RETENTION",
    "store.checkpoint_path": "CHECKPOINT_PATH",
    "store.checkpoint_interval": "CHECKPOINT_INTERVAL",
    "query.lookback": "QUERY_LOOKBACK",
    "query.timeout": "QUERY_TIMEOUT",
    "query.max_samples": "QUERY_MAX_SAMPLES",
    "query.prometheus_url": "PROMETHEUS_URL",
    "routing_file": "ROUTING_FILE",
    "external_url": "EXTERNAL_URL",
    "automation.frontdoor_url": "FRONTDOOR_URL",
    "automation.region_urls": "REGION_URLS",
    "automation.aggregator_token": "AGGREGATOR_TOKEN",
    "automation.budget_max_actions": "AUTOMATION_BUDGET",
    "automation.budget_window": "AUTOMATION_BUDGET_WINDOW",
}
_SECTIONS = {key.split(".")[0] for key in _KEYS if "." in key}
_TARGET_KEYS = ("job", "url", "interval", "timeout", "labels", "honor_labels")


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    host: str | None = None,
) -> Config:
    """Read the configuration: `path` (or $CONTROLPLANE_CONFIG), then the environment, then
    `port` and `host` (command-line flags, which win over everything)."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_PREFIX + "CONFIG") or None
    settings: dict[str, _Setting] = {}
    if path is not None:
        settings.update(_read_file(Path(path)))
    settings.update(_read_env(env))
    if port is not None:
        settings["server.port"] = _Setting(port, "--port")
    if host is not None:
        settings["server.host"] = _Setting(host, "--host")
    return _build(settings)


def _read_file(path: Path) -> dict[str, _Setting]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{str(path)!r}: cannot read the config file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    out: dict[str, _Setting] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {key}: must be a mapping, got {value!r}")
            for sub, subvalue in value.items():
                _put(out, f"{key}.{sub}", subvalue, path)
        else:
            _put(out, str(key), value, path)
    return out


def _put(out: dict[str, _Setting], key: str, value: Any, path: Path) -> None:
    if key not in _KEYS:
        raise ConfigError(f"{path}: {key}: unknown field")
    nullable = ("query.prometheus_url", "api_token", "store.checkpoint_path")
    if value is not None or key in nullable:
        out[key] = _Setting(value, f"{path}: {key}")


def _read_env(env: Mapping[str, str]) -> dict[str, _Setting]:
    out: dict[str, _Setting] = {}
    for key, suffix in _KEYS.items():
        name = ENV_PREFIX + suffix
        if name not in env:
            continue
        raw = env[name]
        value: Any = raw
        if key == "scrape.targets":
            value = _targets_from_env(raw, name)
        out[key] = _Setting(value, name)
    return out


def _targets_from_env(raw: str, name: str) -> list[dict[str, str]]:
    """`job=url,job=url` into target mappings."""
    targets = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        job, sep, url = item.partition("=")
        if not sep or not job.strip() or not url.strip():
            raise ConfigError(f"{name}: {item!r} is not job=url")
        targets.append({"job": job.strip(), "url": url.strip()})
    return targets


def _build(settings: Mapping[str, _Setting]) -> Config:
    def get(key: str, convert: Callable[[Any, str], Any], default: Any) -> Any:
        setting = settings.get(key)
        return default if setting is None else convert(setting.value, setting.where)

    base = Config()
    scrape_interval = get("scrape.interval", _duration, base.scrape.interval_s)
    scrape_timeout = get("scrape.timeout", _duration, base.scrape.timeout_s)
    targets_setting = settings.get("scrape.targets")
    targets = _targets(targets_setting, scrape_interval, scrape_timeout) if targets_setting else ()
    return Config(
        server=ServerConfig(
            host=get("server.host", _text, base.server.host),
            port=get("server.port", _port, base.server.port),
        ),
        scrape=ScrapeConfig(interval_s=scrape_interval, timeout_s=scrape_timeout, targets=targets),
        store=StoreConfig(
            retention_s=get("store.retention", _duration, base.store.retention_s),
            checkpoint_path=get("store.checkpoint_path", _opt_path, base.store.checkpoint_path),
            checkpoint_interval_s=get(
                "store.checkpoint_interval", _duration, base.store.checkpoint_interval_s
            ),
        ),
        query=QueryConfig(
            lookback_s=get("query.lookback", _duration, base.query.lookback_s),
            timeout_s=get("query.timeout", _duration, base.query.timeout_s),
            max_samples=get("query.max_samples", _positive_int, base.query.max_samples),
            prometheus_url=get("query.prometheus_url", _opt_base_url, None),
        ),
        api_token=get("api_token", _opt_text, None),
        database_url=get("database_url", _text, base.database_url),
        rules_dir=get("rules_dir", _path, base.rules_dir),
        runbooks_dir=get("runbooks_dir", _path, base.runbooks_dir),
        routing_file=get("routing_file", _path, base.routing_file),
        external_url=get("external_url", _text, base.external_url),
        automation=AutomationConfig(
            frontdoor_url=get("automation.frontdoor_url", _opt_base_url, None),
            region_urls=get("automation.region_urls", _region_urls, ()),
            aggregator_token=get("automation.aggregator_token", _opt_text, None),
            budget_max_actions=get("automation.budget_max_actions", _positive_int, 20),
            budget_window_s=get("automation.budget_window", _duration, 600.0),
        ),
    )


def _region_urls(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """`{eu: url}` in a file, `eu=url,latam=url` in the environment."""
    if isinstance(value, str):
        pairs = [part.strip().partition("=") for part in value.split(",") if part.strip()]
        if any(not sep or not k.strip() or not v.strip() for k, sep, v in pairs):
            raise ConfigError(f"{where}: {value!r} is not region=url[,region=url...]")
        value = {k.strip(): v.strip() for k, _sep, v in pairs}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {value!r} is not a mapping of region to admin URL")
    return tuple((str(k), _opt_base_url(v, f"{where}.{k}") or "") for k, v in value.items())


def _targets(setting: _Setting, interval: float, timeout: float) -> tuple[ScrapeTarget, ...]:
    if not isinstance(setting.value, list):
        raise ConfigError(f"{setting.where}: {setting.value!r} is not a list of targets")
    out: list[ScrapeTarget] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(setting.value):
        where = f"{setting.where}[{i}]"
        target = _target(raw, where, interval, timeout)
        if (target.job, target.url) in seen:
            raise ConfigError(f"{where}: duplicate target {target.job!r} {target.url!r}")
        seen.add((target.job, target.url))
        out.append(target)
    return tuple(out)


def _target(raw: Any, where: str, interval: float, timeout: float) -> ScrapeTarget:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {raw!r} is not a mapping with job and url")
    for key in raw:
        if key not in _TARGET_KEYS:
            raise ConfigError(f"{where}.{key}: unknown field (expected one of {_TARGET_KEYS})")
    for key in ("job", "url"):
        if key not in raw:
            raise ConfigError(f"{where}.{key}: missing")
    own_interval = "interval" in raw and raw["interval"] is not None
    interval = _duration(raw["interval"], f"{where}.interval") if own_interval else interval
    if raw.get("timeout") is not None:
        timeout = _duration(raw["timeout"], f"{where}.timeout")
        if timeout > interval:
            raise ConfigError(
                f"{where}.timeout: {raw['timeout']!r} is longer than the interval "
                f"{format_duration(interval)!r}"
            )
    # as Prometheus does: an inherited timeout never exceeds the target's own interval
    timeout = min(timeout, interval)
    if interval <= 0:
        raise ConfigError(f"{where}.interval: {raw.get('interval')!r} must be more than 0s")
    labels = _labels(raw.get("labels") or {}, f"{where}.labels")
    honor = raw.get("honor_labels", False)
    if not isinstance(honor, bool):
        raise ConfigError(f"{where}.honor_labels: {honor!r} is not true or false")
    return ScrapeTarget(
        job=_text(raw["job"], f"{where}.job"),
        url=_metrics_url(raw["url"], f"{where}.url"),
        interval_s=interval,
        timeout_s=timeout,
        # as a Prometheus relabelling would: an `instance` label replaces host:port
        instance=labels.pop("instance", ""),
        labels=labels,
        honor_labels=honor,
    )


def _labels(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {raw!r} is not a mapping of label names to values")
    for name, value in raw.items():
        if not isinstance(name, str) or not LABEL_NAME.match(name) or name.startswith("__"):
            raise ConfigError(f"{where}: {name!r} is not a valid label name")
        if name == "job":
            raise ConfigError(f"{where}.job: set the target's job, not a job label")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}.{name}: {value!r} is not a label value")
    return {str(k): str(v) for k, v in sorted(raw.items())}


def _duration(value: Any, where: str) -> float:
    try:
        if isinstance(value, str | int) and not isinstance(value, bool):
            return parse_duration(str(value))
    except ValueError:
        pass
    raise ConfigError(f"{where}: {value!r} is not a duration")


def _port(value: Any, where: str) -> int:
    try:
        port = int(str(value), 10)
    except ValueError:
        port = -1
    if isinstance(value, bool) or not 0 <= port <= 65535:
        raise ConfigError(f"{where}: {value!r} is not a port")
    return port


def _positive_int(value: Any, where: str) -> int:
    try:
        number = int(str(value).replace("_", ""), 10)
    except ValueError:
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ConfigError(f"{where}: {value!r} is not a positive integer")
    return number


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ConfigError(f"{where}: {value!r} is not a non-empty string")
    return str(value)


def _opt_text(value: Any, where: str) -> str | None:
    return None if value is None or value == "" else _text(value, where)


def _path(value: Any, where: str) -> Path:
    return Path(_text(value, where))


def _opt_path(value: Any, where: str) -> Path | None:
    return None if value is None or value == "" else _path(value, where)


def _http_url(value: Any, where: str) -> tuple[str, str, str, str, str]:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {value!r} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError(f"{where}: {value!r} has an invalid port") from None
    return parts.scheme, parts.netloc, parts.path, parts.query, parts.fragment


def _metrics_url(value: Any, where: str) -> str:
    scheme, netloc, path, query, _ = _http_url(value, where)
    return urlunsplit((scheme, netloc, path or "/metrics", query, ""))


def _opt_base_url(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    scheme, netloc, path, _, _ = _http_url(value, where)
    return urlunsplit((scheme, netloc, path.rstrip("/"), "", ""))
