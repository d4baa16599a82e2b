"""What the SLOs need the store to keep: their longest window and their SLIs' metrics."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from controlplane.slo import SLO, load_specs
from controlplane.slo.generate import generate_rule_groups
from controlplane.slo.inputs import longest_window, sli_metric_names
from controlplane.slo.spec import SLI
from tests.conftest import ROOT

SLOS = [slo for spec in load_specs(ROOT / "rules" / "slo") for slo in spec.slos]


def _with(sli: SLI, window: timedelta = timedelta(days=30)) -> SLO:
    return dataclasses.replace(SLOS[0], sli=sli, window=window)


def test_the_shipped_slis_read_these_counters() -> None:
    assert sli_metric_names(SLOS) == {
        "casino_game_launches_total",
        "casino_rounds_total",
        "casino_wallet_request_duration_seconds_bucket",
        "casino_wallet_request_duration_seconds_count",
        "casino_wallet_requests_total",
    }
    assert longest_window(SLOS) == timedelta(days=30)
    assert longest_window([]) is None


def test_names_come_from_every_selector_a_named_one_at_that() -> None:
    ratio = SLI(
        error_ratio_query='sum(rate({__name__="a_total"}[{{.window}}])) / '
        "sum(rate(b_total[{{.window}}] offset 1m)) + max_over_time((c)[1h:1m])"
        ' * on() group_left topk(1, {__name__=~"d_.*"})'
    )
    assert sli_metric_names([_with(ratio)]) == {"a_total", "b_total", "c"}


def test_the_period_ratio_samples_the_5m_ratio_on_a_5m_grid() -> None:
    def period_expr(slo: SLO) -> str:
        rules = [r for g in generate_rule_groups(slo) for r in g["rules"]]
        return next(r["expr"] for r in rules if r.get("record", "").endswith(("30d", "90d")))

    five = 'slo:sli_error:ratio_rate5m{slo_id="launches-launch-success"}'
    grid = f"{five}[30d:5m]"
    assert period_expr(SLOS[0]) == (
        f"sum_over_time({grid})\n/ ignoring (slo_window)\ncount_over_time({grid})"
    )
    # past ~34 days a 5m grid exceeds the engines' 11,000 points: a coarser multiple of 5m
    long = dataclasses.replace(SLOS[0], window=timedelta(days=90))
    assert f"sum_over_time({five}[90d:15m])" in period_expr(long)
