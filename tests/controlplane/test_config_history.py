"""The store's long-term tier in the configuration, and how the app fits it to the SLOs."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controlplane.app import _follow_slos, build_components, history_config
from controlplane.config import Config, StoreConfig, load_config
from controlplane.errors import ConfigError
from controlplane.slo import load_specs
from controlplane.tsdb.history import DAY_MS
from tests.conftest import ROOT

SLOS = [slo for spec in load_specs(ROOT / "rules" / "slo") for slo in spec.slos]


def test_defaults_keep_slo_series_at_five_minutes_for_the_window_and_a_day() -> None:
    store = load_config(env={}).store
    assert (store.history_match, store.history_resolution_s, store.history_margin_s) == (
        "slo:.*",
        300,
        86400,
    )


def test_history_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("store: {history_match: 'slo:.*|up', history_resolution: 1m}\n")
    store = load_config(path, env={}).store
    assert (store.history_match, store.history_resolution_s) == ("slo:.*|up", 60)
    env = {"CONTROLPLANE_HISTORY_MATCH": "", "CONTROLPLANE_HISTORY_MARGIN": "2d"}
    store = load_config(path, env=env).store
    assert (store.history_match, store.history_margin_s) == (None, 2 * 86400)  # "": no tier
    path.write_text("store: {history_match: null}\n")
    assert load_config(path, env={}).store.history_match is None


def test_a_short_lookback_or_retention_shortens_the_default_resolution(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("store: {retention: 2m}\nquery: {lookback: 3m}\n")
    assert load_config(path, env={}).store.history_resolution_s == 120


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "store: {history_match: 'slo:('}",
            "config.yaml: store.history_match: 'slo:(' is not a valid regular expression",
        ),
        (
            "store: {history_resolution: 0s}",
            "config.yaml: store.history_resolution: '0s' must be more than 0s",
        ),
        (
            "store: {retention: 1h, history_resolution: 2h}",
            "config.yaml: store.history_resolution: '2h' is longer than store.retention '1h'",
        ),
        (
            "store: {history_resolution: 10m}",
            "config.yaml: store.history_resolution: '10m' is longer than query.lookback '5m'",
        ),
        ("store: {history_margin: soon}", "config.yaml: store.history_margin: 'soon' is not a"),
    ],
)
def test_bad_history_settings_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert message in str(info.value)


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="CONTROLPLANE_HISTORY_RESOLUTION: '1h' is longer"):
        load_config(env={"CONTROLPLANE_HISTORY_RESOLUTION": "1h"})


def test_the_tier_keeps_the_slo_series_and_the_slis_inputs_for_the_longest_window() -> None:
    config = history_config(Config(), SLOS)
    assert config is not None
    assert config.retention_ms == 31 * DAY_MS  # 30-day SLOs and a day of margin
    assert config.resolution_ms == 300_000
    assert {"casino_game_launches_total", "casino_wallet_requests_total"} <= config.names
    for name in ("slo:period_error_budget_remaining:ratio", "casino_rounds_total"):
        assert config.matcher.matches(name)
    assert not config.matcher.matches("casino_provider_requests_total")
    off = Config(store=StoreConfig(history_match=None))
    assert history_config(off, SLOS) is None


def test_the_embedded_store_follows_the_slo_windows_across_reloads() -> None:
    components = build_components(Config(), registry=CollectorRegistry())
    store = components.store
    assert store is not None and store.history is not None
    assert store.history.config.names == frozenset()  # the SLO specs are not read yet
    slos = list(SLOS)
    reloaded: list[int] = []
    reload = _follow_slos(Config(), store, slos, lambda: reloaded.append(1))
    assert "casino_rounds_total" in store.history.config.names
    slos[:] = [dataclasses.replace(slos[0], window=timedelta(days=90))]
    reload()
    assert reloaded == [1] and store.history.config.retention_ms == 91 * DAY_MS
    off = build_components(
        Config(store=StoreConfig(history_match=None)), registry=CollectorRegistry()
    )
    assert off.store is not None and off.store.history is None
