"""`controlplane backtest`: replay a store export (or a Prometheus API's raw samples) through
rule files; the pending / firing / resolved times are deterministic, so they are asserted
exactly. The shipped rules run on a provider whose launches time out from T0+180s to T0+300s."""

from __future__ import annotations

import io
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from controlplane.api.params import parse_selector
from controlplane.backtest import replay as backtest
from controlplane.backtest.fetch import fetch_prometheus, mark_gaps
from controlplane.backtest.progress import ProgressBar
from controlplane.backtest.reads import reads, stepwise_reason
from controlplane.backtest.replay import Episode, evaluation_times, replay
from controlplane.cli import backtest as backtestcli
from controlplane.cli import build_parser
from controlplane.model.series import Series, SeriesBatch, is_stale_marker, labels_from
from controlplane.promql.memsource import MemorySource
from controlplane.promql.results import QueryResult, ResultType
from controlplane.remote.prometheus import RemotePrometheus
from controlplane.rules.load import load_file, parse_text
from controlplane.tsdb.export import read_export
from controlplane.tsdb.store import Store
from tests.conftest import ROOT, free_port, require_binary, stop_process

T0 = 1_700_000_000_000  # a multiple of every interval used here
SPAN_S = 600
FAIL_S, RECOVER_S = 180, 300
TARGET = {"job": "aggregator", "instance": "127.0.0.1:8101", "region": "eu"}


def _append_provider_series(store: Store) -> None:
    """Launch counters of two providers scraped every second; alpha's launches time out from
    FAIL_S to RECOVER_S (10 a second, all failing) and its breaker is open meanwhile. The
    timeout counter starts at 100 (errors long ago), so `rate` extrapolates it like the rest."""
    for s in range(SPAN_S + 1):
        t = T0 + s * 1000
        for provider in ("alpha", "beta"):
            failed = 10 * (min(s, RECOVER_S) - FAIL_S) if provider == "alpha" and s > FAIL_S else 0
            values = {
                ("casino_provider_requests_total", "ok"): 10 * s - failed,
                ("casino_provider_requests_total", "timeout"): 100 + failed,
            }
            for (name, outcome), value in values.items():
                labels = {"__name__": name, **TARGET, "provider": provider}
                labels.update(operation="launch", outcome=outcome)
                store.append(labels_from(labels), t, float(value))
            down = provider == "alpha" and FAIL_S <= s < RECOVER_S
            breaker = {"__name__": "casino_circuit_breaker_state", **TARGET, "provider": provider}
            store.append(labels_from(breaker), t, 1.0 if down else 0.0)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = Store()
    _append_provider_series(store)
    path = tmp_path_factory.mktemp("backtest") / "export.npz"
    assert store.export_range(T0, T0 + SPAN_S * 1000, path) == 6
    return path


def cli(*argv: str) -> tuple[int, str, str]:
    parser, _ = build_parser()
    args = parser.parse_args(["backtest", "--no-progress", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = backtestcli.run(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def transitions(report: dict[str, Any]) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """(alertname, provider or svc) -> [(pending, firing, resolved, cancelled) offsets in s]."""
    found = {}
    for rule in report["alerting_rules"]:
        for alert in rule["alerts"]:
            labels = alert["labels"]
            key = (labels["alertname"], labels.get("provider") or labels.get("svc", ""))
            found[key] = [
                tuple(e[f"{w}_offset_s"] for w in ("pending", "firing", "resolved", "cancelled"))
                for e in alert["episodes"]
            ]
    return found


def shipped(found: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
    """The alerts whose times are derived below; the shipped rule files grow other alerts
    (asserted elsewhere only in that the healthy provider never alerts)."""
    assert not [key for key in found if key[1] == "beta"]
    return {key: value for key, value in found.items() if key in SHIPPED}


SHIPPED = {
    # failure ratio over 1m: k/59 after k seconds of failures; > 0.2 from k = 12; for 10s;
    # after recovery (59-j)/59 <= 0.2 from j = 48
    ("ProviderLaunchFailing", "alpha"): [(192.0, 202.0, 348.0, None)],
    # breaker open from 180 s; for 5s; closed at 300 s, keep_firing_for 10s
    ("ProviderBreakerOpen", "alpha"): [(180.0, 185.0, 310.0, None)],
}


def test_shipped_rules_on_an_export(export: Path) -> None:
    code, out, err = cli("--from", str(export), "--rules", str(ROOT / "rules"), "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert shipped(transitions(report)) == SHIPPED
    assert report["start"] == "2023-11-14T22:13:20Z"
    assert report["end"] == "2023-11-14T22:23:20Z"
    assert (report["series"], report["samples"], report["vectorised"]) == (6, 6 * 601, True)
    launch = next(r for r in report["alerting_rules"] if r["alert"] == "ProviderLaunchFailing")
    (alert,) = launch["alerts"]
    assert alert["labels"] == {
        "alertname": "ProviderLaunchFailing",
        "provider": "alpha",
        "region": "eu",
        "severity": "page",
    }
    assert alert["episodes"][0]["firing_at"] == "2023-11-14T22:16:42Z"
    assert alert["episodes"][0]["status"] == "resolved"


def test_one_interval_for_all_groups_and_a_narrower_range(export: Path) -> None:
    code, out, _ = cli(
        "--from", str(export), "--rules", str(ROOT / "rules"), "--json", "--interval", "2s",
        "--start", "2023-11-14T22:15:00Z", "--end", "1700000400",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert (report["start"], report["end"], report["interval_s"]) == (
        "2023-11-14T22:15:00Z",
        "2023-11-14T22:20:00Z",
        2.0,
    )
    # offsets are from the range's start (T0 + 100 s); the breaker fires on the even grid
    assert shipped(transitions(report)) == {
        ("ProviderLaunchFailing", "alpha"): [(92.0, 102.0, 248.0, None)],
        ("ProviderBreakerOpen", "alpha"): [(80.0, 86.0, 210.0, None)],
    }


def test_empty_export_needs_a_range(tmp_path: Path) -> None:
    Store().export_range(T0, T0 + 1000, tmp_path / "empty.npz")
    code, _, err = cli("--from", str(tmp_path / "empty.npz"))
    assert code == 1
    assert (
        err
        == f"controlplane backtest: '{tmp_path / 'empty.npz'}' holds no samples; give --start and --end\n"
    )
    window = ("--start", "1700000000", "--end", "1700000060")
    code, out, _ = cli(
        "--from", str(tmp_path / "empty.npz"), *window, "--rules", str(ROOT / "rules"), "--json"
    )
    assert code == 0
    # no data: only the alerts that need none fire (rules/controlplane.yml)
    fired = {
        a["labels"]["alertname"] for r in json.loads(out)["alerting_rules"] for a in r["alerts"]
    }
    assert fired == {"Watchdog", "ControlPlaneSelfScrapeMissing"}
    code, _, err = cli(
        "--from", str(tmp_path / "empty.npz"), "--start", "1700000060", "--end", "1700000000"
    )
    assert code == 1
    assert err == (
        "controlplane backtest: the range ends (2023-11-14T22:13:20Z) before it starts"
        " (2023-11-14T22:14:20Z)\n"
    )


def test_text_report(export: Path) -> None:
    code, out, _ = cli("--from", str(export), "--rules", str(ROOT / "rules" / "providers.yml"))
    assert code == 0
    assert "ProviderLaunchFailing  for 10s  [casino-providers-alerts]" in out
    assert '  {provider="alpha", region="eu", severity="page"}' in out
    assert "    pending   2023-11-14T22:16:32Z  +3m12s" in out
    assert "    firing    2023-11-14T22:16:42Z  +3m22s" in out
    assert "    resolved  2023-11-14T22:19:08Z  +5m48s" in out
    assert "\nNever pending: " in out
    assert out.rstrip().endswith("at the end 0 firing, 0 pending")


def test_stepwise_replay_agrees_with_the_vectorised_one(export: Path) -> None:
    groups = load_file(ROOT / "rules" / "providers.yml")
    batch = read_export(export)
    # every 2 s, to keep the stepwise replay short; the transitions fall on even seconds
    window = {"start_ms": T0 + 176_000, "end_ms": T0 + 350_000, "interval_ms": 2000}
    fast = replay(groups, batch, **window)
    slow = replay(groups, batch, stepwise=True, **window)
    assert (fast.vectorised, slow.vectorised, slow.stepwise_reason) == (True, False, "asked for")
    assert fast.rules == slow.rules
    (launch,) = next(r for r in slow.rules if r.rule.name == "ProviderLaunchFailing").alerts
    (episode,) = launch.episodes
    assert replace(episode, value=None) == Episode(
        pending_at_ms=T0 + 192_000, firing_at_ms=T0 + 202_000, resolved_at_ms=T0 + 348_000
    )
    assert episode.value is not None and 0.1 < episode.value <= 1  # the failure ratio at firing


def test_series_the_rules_write_are_left_out_of_the_input(tmp_path: Path) -> None:
    store = Store()
    _append_provider_series(store)
    for s in range(0, SPAN_S + 1, 1):  # what the live rules wrote: must not mask the replay
        ratio = {"__name__": "casino:provider_launch_failure:ratio_rate1m", "provider": "beta"}
        store.append(labels_from({**ratio, "region": "eu"}), T0 + s * 1000, 1.0)
        alerts = {"__name__": "ALERTS", "alertname": "ProviderBreakerOpen", "provider": "beta"}
        store.append(labels_from({**alerts, "alertstate": "firing"}), T0 + s * 1000, 1.0)
    store.export_range(T0, T0 + SPAN_S * 1000, tmp_path / "live.npz")
    code, out, _ = cli(
        "--from", str(tmp_path / "live.npz"), "--rules", str(ROOT / "rules"), "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert (report["dropped_series"], report["series"]) == (2, 6)
    assert shipped(transitions(report)) == SHIPPED


# -- a small rule file: chained recording rules, for, keep_firing_for, cancelled, still firing --

SERVICES = """
groups:
  - name: record
    interval: 5s
    rules:
      - record: svc:down
        expr: svc_up == 0
      - record: svc:down:count
        expr: count(svc:down)
  - name: alerts
    interval: 5s
    rules:
      - alert: ServiceDown
        expr: svc:down
        for: 20s
        keep_firing_for: 10s
        labels: {severity: page}
        annotations: {summary: "{{ $labels.svc }} is down"}
      - alert: AnyServiceDown
        expr: svc:down:count > 0
"""
# reads ALERTS: only the stepwise replay gets this right
PAGES = """
      - alert: PageFiring
        expr: count(ALERTS{alertstate="firing", severity="page"}) > 0
"""
DOWN = {"a": (100, 200), "b": (50, 55), "c": (300, 10_000)}  # seconds after T0, [from, to)


def services_batch(span_s: int = 400) -> SeriesBatch:
    store = Store()
    for s in range(span_s + 1):
        for svc, (lo, hi) in DOWN.items():
            labels = labels_from({"__name__": "svc_up", "svc": svc})
            store.append(labels, T0 + s * 1000, 0.0 if lo <= s < hi else 1.0)
    return store.select_batch([], T0, T0 + span_s * 1000)


SERVICES_EXPECTED = {
    ("ServiceDown", "a"): (Episode(pending_at_ms=100, firing_at_ms=120, resolved_at_ms=210),),
    ("ServiceDown", "b"): (Episode(pending_at_ms=50, cancelled_at_ms=55),),
    ("ServiceDown", "c"): (Episode(pending_at_ms=300, firing_at_ms=320),),
    ("AnyServiceDown", ""): (
        Episode(pending_at_ms=50, firing_at_ms=50, resolved_at_ms=55),
        Episode(pending_at_ms=100, firing_at_ms=100, resolved_at_ms=200),
        Episode(pending_at_ms=300, firing_at_ms=300),
    ),
}


def _offsets(report: Any) -> dict[tuple[str, str], tuple[Episode, ...]]:
    def rel(t: int | None) -> int | None:
        return None if t is None else (t - T0) // 1000

    return {
        (h.rule.name, dict(a.labels).get("svc", "")): tuple(
            Episode(
                pending_at_ms=rel(e.pending_at_ms) or 0,
                firing_at_ms=rel(e.firing_at_ms),
                resolved_at_ms=rel(e.resolved_at_ms),
                cancelled_at_ms=rel(e.cancelled_at_ms),
            )
            for e in a.episodes
        )
        for h in report.rules
        for a in h.alerts
    }


@pytest.fixture
def services(tmp_path: Path) -> tuple[Path, Path]:
    """An export of the services' samples and the rule file, with a rule that always fails."""
    store = Store()
    store.append_batch(services_batch())
    store.export_range(T0, T0 + 400_000, tmp_path / "services.npz")
    broken = (
        '\n      - alert: Duplicated\n        expr: label_replace(svc_up, "svc", "same", "", "")\n'
    )
    (tmp_path / "services.yml").write_text(SERVICES + broken)
    return tmp_path / "services.npz", tmp_path / "services.yml"


def test_text_report_of_a_small_rule_file(services: tuple[Path, Path]) -> None:
    export, rules = services
    code, out, err = cli("--from", str(export), "--rules", str(rules))
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == TEXT_REPORT.format(file=rules).splitlines()[1:]
    assert out.splitlines()[0] == f"Backtest of {rules} on {export}"


TEXT_REPORT = """Backtest of {file}
  2023-11-14T22:13:20Z .. 2023-11-14T22:20:00Z (6m40s), each group at its interval
  3 series, 1203 samples replayed; 405 rule evaluations (stepwise: a range query failed: vector cannot contain metrics with the same labelset)

ServiceDown  for 20s  [alerts]
  {{severity="page", svc="a"}}
    pending   2023-11-14T22:15:00Z  +1m40s
    firing    2023-11-14T22:15:20Z  +2m
    resolved  2023-11-14T22:16:50Z  +3m30s
  {{severity="page", svc="b"}}
    pending   2023-11-14T22:14:10Z  +50s
    cancelled 2023-11-14T22:14:15Z  +55s
  {{severity="page", svc="c"}}
    pending   2023-11-14T22:18:20Z  +5m
    firing    2023-11-14T22:18:40Z  +5m20s
    (still firing at the end)

AnyServiceDown  for 0s  [alerts]
  {{}}
    pending   2023-11-14T22:14:10Z  +50s
    firing    2023-11-14T22:14:10Z  +50s
    resolved  2023-11-14T22:14:15Z  +55s
    pending   2023-11-14T22:15:00Z  +1m40s
    firing    2023-11-14T22:15:00Z  +1m40s
    resolved  2023-11-14T22:16:40Z  +3m20s
    pending   2023-11-14T22:18:20Z  +5m
    firing    2023-11-14T22:18:20Z  +5m
    (still firing at the end)

Never pending: Duplicated

Rule errors:
  alerts / Duplicated: 81 failed evaluations, last: vector cannot contain metrics with the same labelset

Summary: 3 alerting rules, 2 fired; 4 alerts went pending 6 times, fired 5, resolved 3, cancelled 1; at the end 2 firing, 0 pending
"""


def test_json_report_of_a_small_rule_file(services: tuple[Path, Path]) -> None:
    export, rules = services
    code, out, _ = cli("--from", str(export), "--rules", str(rules), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["summary"] == {
        "alerting_rules": 3,
        "rules_fired": 2,
        "alerts": 4,
        "went_pending": 6,
        "fired": 5,
        "resolved": 3,
        "cancelled": 1,
        "firing_at_end": 2,
        "pending_at_end": 0,
    }
    assert report["errors"] == [
        {
            "group": "alerts",
            "rule": "Duplicated",
            "failures": 81,
            "last_error": "vector cannot contain metrics with the same labelset",
        }
    ]
    assert report["vectorised"] is False
    down = next(r for r in report["alerting_rules"] if r["alert"] == "ServiceDown")
    assert (down["for_s"], down["keep_firing_for_s"], down["file"]) == (20.0, 10.0, str(rules))
    cancelled = down["alerts"][1]["episodes"][0]
    assert cancelled == {
        "status": "cancelled",
        "pending_at": "2023-11-14T22:14:10Z",
        "pending_offset_s": 50.0,
        "firing_at": None,
        "firing_offset_s": None,
        "resolved_at": None,
        "resolved_offset_s": None,
        "cancelled_at": "2023-11-14T22:14:15Z",
        "cancelled_offset_s": 55.0,
    }


@pytest.mark.parametrize("stepwise", [False, True], ids=["vectorised", "stepwise"])
def test_small_rule_file(stepwise: bool) -> None:
    groups = parse_text(SERVICES, "services.yml")
    report = replay(groups, services_batch(), start_ms=T0, end_ms=T0 + 400_000, stepwise=stepwise)
    assert report.vectorised is not stepwise
    assert _offsets(report) == SERVICES_EXPECTED
    assert report.errors == ()
    assert report.evaluations == 81 * 4


@pytest.mark.parametrize("window_steps", [1, 2, 13])
def test_windows_of_the_vectorised_replay_do_not_change_the_result(
    window_steps: int, monkeypatch: pytest.MonkeyPatch, export: Path
) -> None:
    # windows of a step or two: every staleness marker and every alert crosses a boundary
    monkeypatch.setattr(backtest, "WINDOW_STEPS", window_steps)
    groups = parse_text(SERVICES, "services.yml")
    report = replay(groups, services_batch(), start_ms=T0, end_ms=T0 + 400_000)
    assert report.vectorised
    assert _offsets(report) == SERVICES_EXPECTED
    report = replay(load_file(ROOT / "rules" / "providers.yml"), read_export(export),
                    start_ms=T0 + 170_000, end_ms=T0 + 360_000)  # fmt: skip
    assert {k: v for k, v in _offsets(report).items() if (k[0], "alpha") in SHIPPED} == {
        (rule, ""): tuple(
            Episode(pending_at_ms=int(p), firing_at_ms=int(f), resolved_at_ms=int(r))
            for p, f, r, _ in episodes
        )
        for (rule, _), episodes in SHIPPED.items()
    }


def test_rules_reading_alerts_fall_back_to_the_stepwise_replay() -> None:
    groups = parse_text(SERVICES + PAGES, "services.yml")
    report = replay(groups, services_batch(), start_ms=T0, end_ms=T0 + 400_000)
    assert not report.vectorised
    assert report.stepwise_reason == "rule 'PageFiring' reads ALERTS"
    found = _offsets(report)
    # ServiceDown writes ALERTS{alertstate="firing"} before PageFiring runs at the same instant
    assert found[("PageFiring", "")] == (
        Episode(pending_at_ms=120, firing_at_ms=120, resolved_at_ms=210),
        Episode(pending_at_ms=320, firing_at_ms=320),
    )
    assert {k: v for k, v in found.items() if k[0] != "PageFiring"} == SERVICES_EXPECTED


def test_failing_rules_are_counted_not_fatal() -> None:
    broken = (
        SERVICES
        + """
      - alert: Duplicated
        expr: label_replace(svc_up, "svc", "same", "", "")
"""
    )
    report = replay(parse_text(broken, "x.yml"), services_batch(), start_ms=T0, end_ms=T0 + 400_000)
    assert report.stepwise_reason.startswith("a range query failed: ")
    ((error),) = report.errors
    assert (error.group, error.rule, error.failures) == ("alerts", "Duplicated", 81)
    assert "same labelset" in error.last_error
    assert _offsets(report) == SERVICES_EXPECTED


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        (SERVICES, None),
        (
            "groups: [{name: g, rules: [{alert: A, expr: 'r:x > 0'}, {record: 'r:x', expr: up}]}]",
            "rule 'A' reads 'r:x' before it is written",
        ),
        (
            "groups: [{name: g, limit: 3, rules: [{record: 'r:x', expr: up}]}]",
            "group 'g' has a limit",
        ),
        (
            "groups: [{name: g, rules: [{alert: A, expr: 'up @ 100'}]}]",
            "rule 'A' reads at a fixed or future time (@, offset < 0)",
        ),
        (
            "groups: [{name: g, rules: [{alert: A, expr: 'up offset -1m'}]}]",
            "rule 'A' reads at a fixed or future time (@, offset < 0)",
        ),
        ("groups: [{name: g, rules: [{alert: A, expr: '{__name__=~\"up|x\"}'}]}]", None),
    ],
)
def test_when_the_vectorised_replay_is_equivalent(rules: str, reason: str | None) -> None:
    assert stepwise_reason(parse_text(rules, "x.yml"), 300_000) == reason


def test_what_the_rules_read() -> None:
    (plain,) = reads('rate(x{a=~"b.*"}[5m] offset 1m)')
    assert (plain.name, plain.back_ms, plain.forward_ms, plain.pinned) == ("x", 360_000, 0, False)
    assert [m.value for m in plain.matchers] == ["x", "b.*"]  # as written, RE2 syntax kept
    (sub,) = reads("max_over_time(rate(y[1m])[10m:30s] offset 2m)")
    assert (sub.name, sub.back_ms) == ("y", 60_000 + 600_000 + 120_000)
    (ahead,) = reads("z offset -1m", lookback_ms=300_000)
    assert (ahead.back_ms, ahead.forward_ms) == (240_000, 60_000)
    (anonymous,) = reads('{__name__=~"a|b", job="j"}')
    assert anonymous.name is None
    assert [r.name for r in reads("a / on() group_left b + scalar(c) and -d")] == [
        "a",
        "b",
        "c",
        "d",
    ]


def test_evaluation_grid_is_aligned_to_the_interval() -> None:
    assert list(evaluation_times(1_001, 5_000, 2_000)) == [2_000, 4_000]
    assert list(evaluation_times(2_000, 4_000, 2_000)) == [2_000, 4_000]
    assert list(evaluation_times(2_001, 3_999, 2_000)) == []


class _FakePrometheus:
    """Answers `{selector}[Nms]` at t with the raw samples in (t - N, t], as Prometheus 3 does,
    from a MemorySource; records the requests."""

    def __init__(self, batch: SeriesBatch) -> None:
        self.source = MemorySource(batch.series(i) for i in range(len(batch)))
        self.requests: list[tuple[str, int]] = []

    def series(self, selectors: Any, start_ms: int, end_ms: int, limit: int = 0) -> list[Any]:
        (matchers,) = selectors
        return [s.labels for s in self.source.select(list(matchers), start_ms, end_ms)]

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        self.requests.append((expr, time_ms))
        selector, width = re.fullmatch(r"(\{.*\})\[(\d+)ms\]", expr).groups()  # type: ignore[union-attr]
        (matchers,) = parse_selector(selector)
        found = self.source.select(matchers, time_ms - int(width) + 1, time_ms)
        return QueryResult(type=ResultType.MATRIX, matrix=tuple(found))


def test_fetching_asks_for_bounded_chunks_of_the_metrics_the_rules_read(export: Path) -> None:
    fake = _FakePrometheus(read_export(export))
    groups = parse_text(
        SERVICES.replace("svc_up == 0", "casino_circuit_breaker_state == 1"), "x.yml"
    )
    batch = fetch_prometheus(fake, groups, T0 + 400_000, T0 + 600_000, max_request_samples=240_000)
    # 2 series: 120,000 s a request at 1 sample/s, capped at an hour; one request from
    # start - 5m (the lookback) to the end
    assert fake.requests == [('{__name__="casino_circuit_breaker_state"}[500000ms]', T0 + 600_000)]
    assert [dict(lb)["provider"] for lb in batch.labels] == ["alpha", "beta"]
    # (start - 5m, end], every sample once
    assert batch.series(0).timestamps.tolist() == list(range(T0 + 101_000, T0 + 600_001, 1000))
    fake.requests.clear()
    fetch_prometheus(fake, groups, T0 + 400_000, T0 + 600_000, max_request_samples=20)
    # 10 s a request would do, but a request covers at least a minute
    assert [t for _, t in fake.requests] == [T0 + 600_000 - k * 60_000 for k in range(9)]
    assert fake.requests[-1][0].endswith("[20000ms]")


def test_gaps_get_staleness_markers() -> None:
    t = np.array([0, 10, 20, 60, 70, 80], dtype=np.int64)
    batch = SeriesBatch.from_series(
        [
            _series({"__name__": "x"}, t, np.arange(6.0)),
            _series({"__name__": "y"}, t[:2], t[:2] * 1.0),
        ]
    )
    marked = mark_gaps(batch, end_ms=200)
    x = marked.series(0)
    assert x.timestamps.tolist() == [0, 10, 20, 30, 60, 70, 80, 90]
    assert [is_stale_marker(v) for v in x.values.tolist()] == [False] * 3 + [True] + [False] * 3 + [
        True
    ]
    assert marked.series(1).timestamps.tolist() == [0, 10]  # too few samples to tell
    assert len(mark_gaps(batch, end_ms=95).series(0).timestamps) == 7


def _series(labels: dict[str, str], t: Any, v: Any) -> Series:
    return Series(labels=labels_from(labels), timestamps=t, values=v)


# -- errors: one line each, exit code 1 -----------------------------------------------------------


def test_unreadable_export(tmp_path: Path) -> None:
    code, out, err = cli("--from", str(tmp_path / "missing.npz"), "--rules", str(ROOT / "rules"))
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"controlplane backtest: cannot read export '{tmp_path / 'missing.npz'}'")
    (tmp_path / "text.npz").write_text("not an export")
    code, _, err = cli("--from", str(tmp_path / "text.npz"), "--rules", str(ROOT / "rules"))
    assert code == 1 and err.count("\n") == 1 and "cannot read export" in err


def test_unreachable_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = cli("--from", url, "--start", "1700000000", "--end", "1700000600")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err == f"controlplane backtest: {url}/api/v1/series did not answer: connection refused\n"


def test_bad_rules_name_file_group_rule_and_field(tmp_path: Path, export: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'sum(('\n")
    code, out, err = cli("--from", str(export), "--rules", str(bad))
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    assert line.startswith(
        f'controlplane backtest: {bad}: 5:15: group "g", rule 1, "A": field \'expr\''
    )
    code, _, err = cli("--from", str(export), "--rules", str(tmp_path / "nothing"))
    assert code == 1 and err.count("\n") == 1


# -- progress ---------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_stays_quiet_for_short_work() -> None:
    stream, clock = io.StringIO(), _Clock()
    bar = ProgressBar(stream, clock=clock)
    bar.begin("replaying")
    for done in range(1, 101):
        clock.now += 0.001
        bar(done, 100)
    assert stream.getvalue() == ""


def test_progress_bar_on_a_terminal_redraws_in_place_a_few_times_a_second() -> None:
    stream, clock = _Terminal(), _Clock()
    bar = ProgressBar(stream, clock=clock, width=10)
    bar.begin("replaying")
    for done in range(1, 1001):
        clock.now = done / 128  # 7.8 s in all: drawn from 0.5 s on, 4 times a second at most
        bar(done, 1000)
    draws = stream.getvalue().split("\r")[1:]
    assert len(draws) == 31
    assert draws[0] == "replaying [..........]   6% 64/1000"
    assert draws[1] == "replaying [..........]  10% 96/1000"
    assert draws[-1] == "replaying [##########] 100% 1000/1000\n"


def test_progress_bar_leaves_its_line_when_the_work_fails() -> None:
    stream, clock = _Terminal(), _Clock()
    bar = ProgressBar(stream, clock=clock, width=4)
    bar.begin("fetching")
    clock.now = 1.0
    bar(1, 4)
    bar.end()
    assert stream.getvalue() == "\rfetching [#...]  25% 1/4\n"


def test_progress_bar_elsewhere_prints_a_line_now_and_then() -> None:
    stream, clock = io.StringIO(), _Clock()
    bar = ProgressBar(stream, clock=clock, width=4)
    bar.begin("fetching")
    for done in range(1, 301):
        clock.now = done / 8  # 37.5 s
        bar(done, 300)
    assert stream.getvalue().splitlines() == [
        "fetching [....]   1% 4/300",
        "fetching [#...]  28% 84/300",
        "fetching [##..]  55% 164/300",
        "fetching [###.]  81% 244/300",
        "fetching [####] 100% 300/300",
    ]


# -- the same from a real Prometheus holding the same samples -------------------------------------


@pytest.fixture(scope="module")
def prometheus(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`promtool tsdb create-blocks-from openmetrics` backfills the export's samples; a
    `prometheus` serves them."""
    promtool, binary = require_binary("promtool"), require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    batch = read_export(export)
    with (tmp / "data.om").open("w") as out:
        for i in range(len(batch)):
            s = batch.series(i)
            labels = dict(s.labels)
            name = labels.pop("__name__")
            inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
            for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True):
                out.write(f"{name}{{{inner}}} {v} {t / 1000:.3f}\n")
        out.write("# EOF\n")
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(tmp / "data.om"),
            str(tmp / "tsdb"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (tmp / "prometheus.yml").write_text("global: {}\n")
    url = f"http://127.0.0.1:{free_port()}"
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address={url.removeprefix('http://')}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        stop_process(proc)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    with requests.Session() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "prometheus exited"
            try:
                if http.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"prometheus at {url} not ready")


@pytest.mark.slow
def test_prometheus_url_gives_the_same_transitions(prometheus: str, export: Path) -> None:
    window = ("--start", str(T0 // 1000), "--end", str(T0 // 1000 + SPAN_S))
    code, out, err = cli("--from", prometheus, *window, "--rules", str(ROOT / "rules"), "--json")
    assert (code, err) == (0, "")
    from_url = json.loads(out)
    _, out, _ = cli("--from", str(export), "--rules", str(ROOT / "rules"), "--json")
    from_export = json.loads(out)
    assert shipped(transitions(from_url)) == SHIPPED
    assert from_url["alerting_rules"] == from_export["alerting_rules"]
    assert (from_url["series"], from_url["samples"]) == (6, 6 * 601)


@pytest.mark.slow
def test_fetching_in_small_chunks_gets_every_raw_sample_once(prometheus: str, export: Path) -> None:
    rules = """
groups:
  - name: g
    rules:
      - record: r:requests
        expr: sum(rate(casino_provider_requests_total[1m]))
      - alert: A
        expr: casino_circuit_breaker_state == 1 and on () r:requests > 0
      - alert: B
        expr: not_exported > 0
"""
    groups = parse_text(rules, "x.yml")
    client = RemotePrometheus(prometheus, timeout_s=10)
    requests_made: list[int] = []
    try:
        batch = fetch_prometheus(
            client,
            groups,
            T0 + 300_000,
            T0 + SPAN_S * 1000,
            max_chunk_ms=60_000,
            progress=lambda done, total: requests_made.append(done),
        )
    finally:
        client.close()
    # the three metrics the rules read (not their own r:requests), of which the export has two
    assert requests_made == [1, 2, 3]
    # from start - 5m (the lookback, the longest reach of these rules) to the end
    expected = read_export(export)
    assert batch.labels == expected.labels
    assert batch.offsets.tolist() == expected.offsets.tolist()
    assert batch.timestamps.tolist() == expected.timestamps.tolist()
    assert batch.values.tolist() == expected.values.tolist()
