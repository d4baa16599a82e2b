from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.collect.scrape import ScrapeTarget
from controlplane.config import Config, format_duration, load_config, parse_duration
from controlplane.errors import ConfigError

FULL = """
server: {host: 0.0.0.0, port: 9000}
api_token: from-file
database_url: postgresql+psycopg://db/cp
scrape:
  interval: 10s
  timeout: 5s
  targets:
    - {job: eu, url: "http://127.0.0.1:8101/metrics", labels: {region: eu}}
    - {job: latam, url: "http://127.0.0.1:8102", interval: 1m, timeout: 20s}
    - {job: fast, url: "https://127.0.0.1:8103/m", interval: 2s, honor_labels: true}
    - {job: named, url: "http://10.0.0.1:9100", labels: {instance: db-1, rack: r1}}
store: {retention: 1h30m, checkpoint_path: var/x, checkpoint_interval: 30s}
query: {lookback: 2m, timeout: 30s, max_samples: 1000, prometheus_url: "http://prom:9090/"}
rules_dir: my-rules
runbooks_dir: my-runbooks
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15), ("1m", 60), ("1h30m", 5400), ("0", 0), ("100ms", 0.1), ("1d", 86400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "15", "1m1h", "-1s", "1.5s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 15, 60, 5400, 0.25, 90061)] == [
        "0s",
        "15s",
        "1m",
        "1h30m",
        "250ms",
        "1d1h1m1s",
    ]


def test_defaults_without_file_or_environment() -> None:
    config = load_config(env={})
    assert config == Config()
    assert config.server.port == 8000
    assert config.query.lookback_s == 300
    assert config.query.prometheus_url is None
    assert config.rules_dir == Path("rules")
    assert config.runbooks_dir == Path("runbooks")


def test_file_values_and_target_inheritance(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), env={})
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9000)
    assert config.api_token == "from-file"
    assert config.database_url == "postgresql+psycopg://db/cp"
    eu, latam, fast, named = config.scrape.targets
    assert eu == ScrapeTarget(
        job="eu",
        url="http://127.0.0.1:8101/metrics",
        interval_s=10,
        timeout_s=5,
        labels={"region": "eu"},
    )
    assert eu.instance == "127.0.0.1:8101"
    assert (latam.url, latam.interval_s, latam.timeout_s) == (
        "http://127.0.0.1:8102/metrics",
        60,
        20,
    )
    # an inherited timeout is cut to the target's own interval, as Prometheus does
    assert (fast.interval_s, fast.timeout_s, fast.honor_labels) == (2, 2, True)
    assert named.target_labels() == (("instance", "db-1"), ("job", "named"), ("rack", "r1"))
    assert config.store.retention_s == 5400
    assert config.store.checkpoint_path == Path("var/x")
    assert config.store.checkpoint_interval_s == 30
    assert config.query.lookback_s == 120
    assert config.query.timeout_s == 30
    assert config.query.max_samples == 1000
    assert config.query.prometheus_url == "http://prom:9090"
    assert config.rules_dir == Path("my-rules")


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    env = {
        "CONTROLPLANE_CONFIG": str(write(tmp_path, FULL)),
        "CONTROLPLANE_PORT": "8123",
        "CONTROLPLANE_API_TOKEN": "from-env",
        "CONTROLPLANE_DATABASE_URL": "sqlite:///x.db",
        "CONTROLPLANE_PROMETHEUS_URL": "http://other:9090",
        "CONTROLPLANE_SCRAPE_TARGETS": "a=http://127.0.0.1:1/metrics, b=http://127.0.0.1:2",
        "CONTROLPLANE_SCRAPE_INTERVAL": "3s",
        "CONTROLPLANE_QUERY_LOOKBACK": "1m",
    }
    config = load_config(env=env)
    assert config.server == type(config.server)(host="0.0.0.0", port=8123)
    assert config.api_token == "from-env"
    assert config.database_url == "sqlite:///x.db"
    assert config.query.prometheus_url == "http://other:9090"
    assert config.query.timeout_s == 30  # from the file: the environment did not set it
    assert config.query.lookback_s == 60
    assert [(t.job, t.url, t.interval_s, t.timeout_s) for t in config.scrape.targets] == [
        ("a", "http://127.0.0.1:1/metrics", 3, 3),
        ("b", "http://127.0.0.1:2/metrics", 3, 3),
    ]
    # a command-line flag wins over both
    assert load_config(env=env, port=7000).server.port == 7000


def test_explicit_path_wins_over_config_variable(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("server: {port: 7777}\n")
    env = {"CONTROLPLANE_CONFIG": str(write(tmp_path, FULL))}
    assert load_config(other, env=env).server.port == 7777


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env={}) == Config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "scrape:\n  targets:\n    - {job: a, url: 'http://h:1'}\n    - {job: b, url: 'http://h:2'}"
            "\n    - {job: c, url: 'http://h:3', interval: 5x}",
            "config.yaml: scrape.targets[2].interval: '5x' is not a duration",
        ),
        ("server: {port: 99999}", "config.yaml: server.port: 99999 is not a port"),
        ("server: {prot: 1}", "config.yaml: server.prot: unknown field"),
        ("colour: blue", "config.yaml: colour: unknown field"),
        ("scrape: 5", "config.yaml: scrape: must be a mapping"),
        ("- a\n- b", "config.yaml: the top level must be a mapping"),
        ("server: {port: [1", "config.yaml: not valid YAML"),
        ("query: {max_samples: -5}", "config.yaml: query.max_samples: -5 is not a positive"),
        ("query: {prometheus_url: 'ftp://x'}", "query.prometheus_url: 'ftp://x' is not an http"),
        ("scrape: {targets: {a: b}}", "scrape.targets: {'a': 'b'} is not a list of targets"),
        ("scrape: {targets: [{job: a}]}", "scrape.targets[0].url: missing"),
        ("scrape: {targets: [{url: 'http://h:1'}]}", "scrape.targets[0].job: missing"),
        ("scrape: {targets: [{job: a, url: 'h:1'}]}", "scrape.targets[0].url: 'h:1' is not an"),
        (
            "scrape: {targets: [{job: a, url: 'http://h:1', color: red}]}",
            "scrape.targets[0].color: unknown field",
        ),
        (
            "scrape: {targets: [{job: a, url: 'http://h:1', interval: 5s, timeout: 10s}]}",
            "scrape.targets[0].timeout: '10s' is longer than the interval '5s'",
        ),
        (
            "scrape: {targets: [{job: a, url: 'http://h:1', labels: {0x: y}}]}",
            "scrape.targets[0].labels: '0x' is not a valid label name",
        ),
        (
            "scrape: {targets: [{job: a, url: 'http://h:1', labels: {job: b}}]}",
            "scrape.targets[0].labels.job: set the target's job",
        ),
        (
            "scrape: {targets: [{job: a, url: 'http://h:1', honor_labels: 'yes'}]}",
            "scrape.targets[0].honor_labels: 'yes' is not true or false",
        ),
        (
            "scrape: {targets: [{job: a, url: 'http://h:1'}, {job: a, url: 'http://h:1'}]}",
            "scrape.targets[1]: duplicate target 'a' 'http://h:1/metrics'",
        ),
        (
            "scrape: {interval: 0, targets: [{job: a, url: 'http://h:1'}]}",
            "scrape.targets[0].interval: None must be more than 0s",
        ),
    ],
)
def test_file_errors_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONTROLPLANE_PORT": "eighty"}, "CONTROLPLANE_PORT: 'eighty' is not a port"),
        ({"CONTROLPLANE_SCRAPE_INTERVAL": "5x"}, "CONTROLPLANE_SCRAPE_INTERVAL: '5x' is not a"),
        ({"CONTROLPLANE_SCRAPE_TARGETS": "a=http://h:1,eu"}, "'eu' is not job=url"),
        (
            {"CONTROLPLANE_SCRAPE_TARGETS": "a=nope"},
            "CONTROLPLANE_SCRAPE_TARGETS[0].url: 'nope' is not an http(s) URL",
        ),
        ({"CONTROLPLANE_CONFIG": "/nonexistent/cp.yaml"}, "'/nonexistent/cp.yaml': cannot read"),
    ],
)
def test_environment_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert message in str(info.value)


def test_audit_and_bounds_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    defaults = load_config(env={})
    assert defaults.automation.maintenance_max_duration_s == 24 * 3600
    assert defaults.silence_max_duration_s == 30 * 86400
    assert (defaults.audit.anchor_path, defaults.audit.anchor_interval_s) == (None, 10)
    text = (
        "silence_max_duration: 7d\n"
        "automation: {maintenance_max_duration: 4h}\n"
        "audit: {anchor_path: /srv/anchors.jsonl, anchor_interval: 30s}\n"
    )
    config = load_config(write(tmp_path, text), env={})
    assert config.silence_max_duration_s == 7 * 86400
    assert config.automation.maintenance_max_duration_s == 4 * 3600
    assert config.audit.anchor_path == Path("/srv/anchors.jsonl")
    assert config.audit.anchor_interval_s == 30
    env = {
        "CONTROLPLANE_SILENCE_MAX_DURATION": "1d",
        "CONTROLPLANE_MAINTENANCE_MAX_DURATION": "2h",
        "CONTROLPLANE_AUDIT_ANCHOR_PATH": "elsewhere.jsonl",
        "CONTROLPLANE_AUDIT_ANCHOR_INTERVAL": "5s",
    }
    config = load_config(write(tmp_path, text), env=env)
    assert (config.silence_max_duration_s, config.automation.maintenance_max_duration_s) == (
        86400,
        7200,
    )
    assert config.audit.anchor_path == Path("elsewhere.jsonl")
    assert config.audit.anchor_interval_s == 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CONTROLPLANE_SILENCE_MAX_DURATION": "0s"},
            "CONTROLPLANE_SILENCE_MAX_DURATION: '0s' must be more than 0s",
        ),
        (
            {"CONTROLPLANE_MAINTENANCE_MAX_DURATION": "forever"},
            "CONTROLPLANE_MAINTENANCE_MAX_DURATION: 'forever' is not a duration",
        ),
        (
            {"CONTROLPLANE_AUDIT_ANCHOR_INTERVAL": "0"},
            "CONTROLPLANE_AUDIT_ANCHOR_INTERVAL: '0' must be more than 0s",
        ),
    ],
)
def test_bad_bounds_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert message in str(info.value)
