"""The control plane's configuration: defaults < a YAML file < `CONTROLPLANE_*` environment.

The file is `--config FILE` or `$CONTROLPLANE_CONFIG`. It is read once into frozen dataclasses;
every error names where the value came from (`config.yaml: scrape.targets[2].interval: '5x' is
not a duration`, `CONTROLPLANE_PORT: 'x' is not a port`). Durations use Prometheus syntax
(`15s`, `1m`, `1h30m`) and are held as float seconds.

```yaml
server: {host: 127.0.0.1, port: 8000, session_ttl: 12h}
api_token: secret
database_url: sqlite:///var/controlplane.db
scrape:
  interval: 15s
  timeout: 10s
  targets:
    - {job: aggregator, url: "http://127.0.0.1:8101/metrics", interval: 5s, labels: {region: eu}}
store: {retention: 24h, checkpoint_path: var/controlplane-store, checkpoint_interval: 10m,
        history_match: "slo:.*", history_resolution: 5m, history_margin: 1d}
query: {lookback: 5m, timeout: 2m, max_samples: 50000000, prometheus_url: null,
        max_length: 65536, max_depth: 64, max_concurrency: 4}
rules_dir: rules
runbooks_dir: runbooks
access_file: config/access.yml   # users, roles and tokens; secret_key: signs dashboard sessions
silence_max_duration: 30d        # longer silences are refused (400)
automation: {maintenance_max_duration: 24h}
audit: {anchor_path: null, anchor_interval: 10s}  # null: beside the SQLite file, else var/
```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane import configvalues as values
from controlplane.collect.scrape import ScrapeTarget
from controlplane.configvalues import LABEL_NAME
from controlplane.errors import ConfigError
from controlplane.model import yamltext
from controlplane.model.times import format_duration, parse_duration

# parse_duration, format_duration and LABEL_NAME have long been imported from here
__all__ = [
    "LABEL_NAME",
    "AuditConfig",
    "AutomationConfig",
    "Config",
    "QueryConfig",
    "ScrapeConfig",
    "ServerConfig",
    "SlackConfig",
    "StoreConfig",
    "format_duration",
    "load_config",
    "parse_duration",
]

ENV_PREFIX = "CONTROLPLANE_"


@dataclass(frozen=True, kw_only=True)
class ScrapeConfig:
    interval_s: float = 15.0
    timeout_s: float = 10.0
    targets: tuple[ScrapeTarget, ...] = ()


@dataclass(frozen=True, kw_only=True)
class StoreConfig:
    """`checkpoint_path` is a directory (snapshot + write-ahead log; None keeps nothing);
    `checkpoint_interval_s` is how often a full snapshot is written: the log is synced after
    every scrape anyway, so a restart loses at most about one scrape interval.

    The long-term tier (controlplane/tsdb/history.py) keeps the series whose metric name
    matches `history_match` (None: no tier), plus the SLIs' own inputs, beyond `retention_s`
    at one sample per `history_resolution_s`, for the longest SLO window + `history_margin_s`."""

    retention_s: float = 24 * 3600.0
    checkpoint_path: Path | None = Path("var/controlplane-store")
    checkpoint_interval_s: float = 600.0
    history_match: str | None = "slo:.*"
    history_resolution_s: float = 300.0
    history_margin_s: float = 86400.0


@dataclass(frozen=True, kw_only=True)
class QueryConfig:
    lookback_s: float = 300.0
    timeout_s: float = 120.0
    max_samples: int = 50_000_000
    prometheus_url: str | None = None
    # bytes and nesting levels of a PromQL text, checked before the parser sees it (a few
    # thousand levels crash it); rule files and real dashboards stay under 10 levels
    max_length: int = 65_536
    max_depth: int = 64
    # API queries running at once; one more is answered 503 at once, so queries cannot take
    # every server thread nor starve rule evaluation and scraping (which are never limited)
    max_concurrency: int = 4


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    # no API body is near this; a larger one is refused (413) before it is read
    max_body_bytes: int = 1 << 20
    # after SIGTERM, the process exits by this time even if a request or a step is stuck
    shutdown_timeout_s: float = 25.0
    # a dashboard sign-in lasts this long; then the token is asked again
    session_ttl_s: float = 12 * 3600.0


@dataclass(frozen=True, kw_only=True)
class AutomationConfig:
    """Where runbook actions go, and how much automation may do on its own."""

    frontdoor_url: str | None = None
    region_urls: tuple[tuple[str, str], ...] = ()  # (region id, admin base URL)
    aggregator_token: str | None = None
    budget_max_actions: int = 20
    budget_window_s: float = 600.0
    # a longer maintenance window is refused: an endless one would block automation for ever
    maintenance_max_duration_s: float = 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class SlackConfig:
    """Slack's Web API: where it is (a stand-in in the demo and tests), the bot's token and the
    secret that signs Slack's requests to /slack/actions and /slack/commands. No token: no
    message is sent; no secret: every Slack request is refused (401)."""

    api_url: str = "https://slack.com/api/"
    bot_token: str | None = None
    signing_secret: str | None = None


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """Where the audit log's head is anchored outside the database (None: beside the SQLite
    database file, `var/` for other databases; see controlplane/audit/anchor.py), how often."""

    anchor_path: Path | None = None
    anchor_interval_s: float = 10.0


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
    access_file: Path = Path("config/access.yml")  # users, roles, tokens (controlplane/access)
    # signs dashboard sessions; None: one generated once and kept in the database
    secret_key: str | None = None
    docs_dir: Path = Path("docs")  # served at /docs/alerts/: where runbook_url annotations point
    external_url: str = "http://127.0.0.1:8000"
    automation: AutomationConfig = field(default_factory=AutomationConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    slack: SlackConfig = field(default_factory=SlackConfig)
    # a longer silence is refused: a forgotten one would mute its alerts for ever
    silence_max_duration_s: float = 30 * 86400.0


@dataclass(frozen=True)
class _Setting:
    value: Any
    where: str  # "config.yaml: scrape.interval" or "CONTROLPLANE_SCRAPE_INTERVAL"


# dotted key -> environment variable; the YAML sections are the keys' prefixes
_KEYS: dict[str, str] = {
    "server.host": "HOST",
    "server.port": "PORT",
    "server.max_body_bytes": "MAX_BODY_BYTES",
    "server.shutdown_timeout": "SHUTDOWN_TIMEOUT",
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
    "store.history_match": "HISTORY_MATCH",
    "store.history_resolution": "HISTORY_RESOLUTION",
    "store.history_margin": "HISTORY_MARGIN",
    "query.lookback": "QUERY_LOOKBACK",
    "query.timeout": "QUERY_TIMEOUT",
    "query.max_samples": "QUERY_MAX_SAMPLES",
    "query.prometheus_url": "PROMETHEUS_URL",
    "query.max_length": "QUERY_MAX_LENGTH",
    "query.max_depth": "QUERY_MAX_DEPTH",
    "query.max_concurrency": "QUERY_MAX_CONCURRENCY",
    "routing_file": "ROUTING_FILE",
    "access_file": "ACCESS_FILE",
    "secret_key": "SECRET_KEY",
    "server.session_ttl": "SESSION_TTL",
    "docs_dir": "DOCS_DIR",
    "external_url": "EXTERNAL_URL",
    "automation.frontdoor_url": "FRONTDOOR_URL",
    "automation.region_urls": "REGION_URLS",
    "automation.aggregator_token": "AGGREGATOR_TOKEN",
    "automation.budget_max_actions": "AUTOMATION_BUDGET",
    "automation.budget_window": "AUTOMATION_BUDGET_WINDOW",
    "automation.maintenance_max_duration": "MAINTENANCE_MAX_DURATION",
    "silence_max_duration": "SILENCE_MAX_DURATION",
    "audit.anchor_path": "AUDIT_ANCHOR_PATH",
    "audit.anchor_interval": "AUDIT_ANCHOR_INTERVAL",
    "slack.api_url": "SLACK_API_URL",
    "slack.bot_token": "SLACK_BOT_TOKEN",
    "slack.signing_secret": "SLACK_SIGNING_SECRET",
}
_SECTIONS = {key.split(".")[0] for key in _KEYS if "." in key}


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
    data = yamltext.load(path, "config file")
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
    nullable = (
        "query.prometheus_url",
        "api_token",
        "secret_key",
        "store.checkpoint_path",
        "store.history_match",
    )
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


_Get = Callable[[str, Callable[[Any, str], Any], Any], Any]


def _build(settings: Mapping[str, _Setting]) -> Config:
    def get(key: str, convert: Callable[[Any, str], Any], default: Any) -> Any:
        setting = settings.get(key)
        return default if setting is None else convert(setting.value, setting.where)

    base = Config()
    scrape_interval = get("scrape.interval", values.duration, base.scrape.interval_s)
    scrape_timeout = get("scrape.timeout", values.duration, base.scrape.timeout_s)
    targets_setting = settings.get("scrape.targets")
    targets = (
        values.targets(
            targets_setting.value, targets_setting.where, scrape_interval, scrape_timeout
        )
        if targets_setting
        else ()
    )
    return Config(
        server=_server(get, base),
        scrape=ScrapeConfig(interval_s=scrape_interval, timeout_s=scrape_timeout, targets=targets),
        store=_store(get, base, settings),
        query=_query(get, base),
        api_token=get("api_token", values.opt_text, None),
        database_url=get("database_url", values.text, base.database_url),
        rules_dir=get("rules_dir", values.path, base.rules_dir),
        runbooks_dir=get("runbooks_dir", values.path, base.runbooks_dir),
        routing_file=get("routing_file", values.path, base.routing_file),
        access_file=get("access_file", values.path, base.access_file),
        secret_key=get("secret_key", values.opt_text, None),
        docs_dir=get("docs_dir", values.path, base.docs_dir),
        external_url=get("external_url", values.text, base.external_url),
        automation=_automation(get, base),
        audit=AuditConfig(
            anchor_path=get("audit.anchor_path", values.opt_path, None),
            anchor_interval_s=get(
                "audit.anchor_interval", values.positive_duration, base.audit.anchor_interval_s
            ),
        ),
        silence_max_duration_s=get(
            "silence_max_duration", values.positive_duration, base.silence_max_duration_s
        ),
        slack=SlackConfig(
            api_url=get("slack.api_url", values.api_base_url, base.slack.api_url),
            bot_token=get("slack.bot_token", values.opt_text, None),
            signing_secret=get("slack.signing_secret", values.opt_text, None),
        ),
    )


def _server(get: _Get, base: Config) -> ServerConfig:
    return ServerConfig(
        host=get("server.host", values.text, base.server.host),
        port=get("server.port", values.port, base.server.port),
        max_body_bytes=get(
            "server.max_body_bytes", values.positive_int, base.server.max_body_bytes
        ),
        shutdown_timeout_s=get(
            "server.shutdown_timeout", values.duration, base.server.shutdown_timeout_s
        ),
        session_ttl_s=get(
            "server.session_ttl", values.positive_duration, base.server.session_ttl_s
        ),
    )


def _store(get: _Get, base: Config, settings: Mapping[str, _Setting]) -> StoreConfig:
    retention = get("store.retention", values.duration, base.store.retention_s)
    lookback = get("query.lookback", values.duration, base.query.lookback_s)
    match = get("store.history_match", values.opt_regex, base.store.history_match)
    resolution = _history_resolution(settings, retention, lookback, checked=match is not None)
    return StoreConfig(
        retention_s=retention,
        checkpoint_path=get("store.checkpoint_path", values.opt_path, base.store.checkpoint_path),
        checkpoint_interval_s=get(
            "store.checkpoint_interval", values.duration, base.store.checkpoint_interval_s
        ),
        history_match=match,
        history_resolution_s=resolution,
        history_margin_s=get("store.history_margin", values.duration, base.store.history_margin_s),
    )


def _history_resolution(
    settings: Mapping[str, _Setting], retention_s: float, lookback_s: float, *, checked: bool
) -> float:
    """As set (and checked against the retention and the lookback), or the default shortened
    to fit them, so that a short lookback or retention alone is not an error."""
    setting = settings.get("store.history_resolution")
    if setting is None:
        fits = [s for s in (retention_s, lookback_s) if s > 0]
        return min([StoreConfig.history_resolution_s, *fits])
    seconds = values.positive_duration(setting.value, setting.where)
    if checked:
        values.history_resolution(
            seconds, setting.where, retention_s=retention_s, lookback_s=lookback_s
        )
    return seconds


def _query(get: _Get, base: Config) -> QueryConfig:
    return QueryConfig(
        lookback_s=get("query.lookback", values.duration, base.query.lookback_s),
        timeout_s=get("query.timeout", values.duration, base.query.timeout_s),
        max_samples=get("query.max_samples", values.positive_int, base.query.max_samples),
        prometheus_url=get("query.prometheus_url", values.opt_base_url, None),
        max_length=get("query.max_length", values.positive_int, base.query.max_length),
        max_depth=get("query.max_depth", values.query_depth, base.query.max_depth),
        max_concurrency=get(
            "query.max_concurrency", values.positive_int, base.query.max_concurrency
        ),
    )


def _automation(get: _Get, base: Config) -> AutomationConfig:
    return AutomationConfig(
        frontdoor_url=get("automation.frontdoor_url", values.opt_base_url, None),
        region_urls=get("automation.region_urls", values.region_urls, ()),
        aggregator_token=get("automation.aggregator_token", values.opt_text, None),
        budget_max_actions=get("automation.budget_max_actions", values.positive_int, 20),
        budget_window_s=get("automation.budget_window", values.duration, 600.0),
        maintenance_max_duration_s=get(
            "automation.maintenance_max_duration",
            values.positive_duration,
            base.automation.maintenance_max_duration_s,
        ),
    )
