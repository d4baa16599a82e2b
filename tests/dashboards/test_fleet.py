"""Providers, wallet and regions: the queries, the data functions over the scenario's fleet
telemetry (tests/dashboards/fleet_telemetry.py), and the figures and tables they feed."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

import promql_parser
import pytest

from controlplane.errors import QueryError
from dashboards import fleet, fleet_figures, fleet_panels, queries
from dashboards.fleet import Curve, Grid, ProviderNow
from dashboards.reads import ReadModels
from dashboards.view import View, Window
from tests.dashboards.fleet_telemetry import at
from tests.dashboards.scenario import END_MS, START_MS

MINUTE = 60_000
HOUR = View(range="1h").window(END_MS)  # 11:00 to 12:00, 5 s steps
ALL = Window(start_ms=START_MS, end_ms=END_MS, step_ms=MINUTE)  # 10:00 to 12:00


def cell(grid: Grid, row: str, hh_mm: str, window: Window = ALL) -> float | None:
    return grid.row(row)[(at(hh_mm) - window.start_ms) // window.step_ms]


def note(grid: Grid, row: str, hh_mm: str, window: Window = ALL) -> str:
    return grid.notes[grid.rows.index(row)][(at(hh_mm) - window.start_ms) // window.step_ms]


def by_region(grids: Sequence[Grid]) -> dict[str, Grid]:
    return {g.title: g for g in grids}


def value(curves: Sequence[Curve], hh_mm: str, **labels: str) -> float:
    (curve,) = [c for c in curves if all(c.labels.get(k) == v for k, v in labels.items())]
    return curve.values[curve.t_ms.index(at(hh_mm))]


# -- queries ----------------------------------------------------------------------------------


def every_query(region: str | None, step_ms: int) -> Iterator[str]:
    window = queries.rate_window(step_ms)
    yield queries.provider_p99(region, window)
    yield queries.provider_error_ratio(region, window)
    yield queries.launch_success(region, window)
    yield queries.breaker_state(region, step_ms)
    yield queries.provider_isolated(region, step_ms)
    yield queries.provider_canary(region, step_ms)
    yield queries.provider_regions()
    yield queries.wallet_answered(window)
    yield queries.wallet_operator_answered(window)
    yield queries.wallet_latency(0.99, window)
    yield queries.wallet_queue("casino_wallet_queue_depth", step_ms)
    yield queries.per_minute("casino_failover_events_total", "region, kind", window)
    yield queries.region_state("casino_region_up", "min_over_time", step_ms)
    yield queries.failover_counts(3_600_000)
    yield queries.active_sessions()


@pytest.mark.parametrize(("region", "step_ms"), [(None, 5000), ('e"u\\', 3_600_000)])
def test_every_query_parses_whatever_the_region(region: str | None, step_ms: int) -> None:
    for expr in every_query(region, step_ms):
        promql_parser.parse(expr)
    assert 'region="e\\"u\\\\"' in queries.provider_p99('e"u\\', "2m")


def test_rates_see_two_scrapes_and_states_keep_what_a_long_step_holds() -> None:
    # a rate needs two samples of a one-minute scrape, and never skips what lies between steps
    assert queries.rate_window(5000) == "120s"
    assert queries.rate_window(3_600_000) == "3600s"
    assert queries.breaker_state("eu", 5000) == (
        'max by (region, provider) (casino_circuit_breaker_state{region="eu"})'
    )
    assert "max_over_time(casino_provider_isolated[600s])" in queries.provider_isolated(
        None, 600_000
    )
    assert "min_over_time(casino_provider_canary_percent[600s])" in queries.provider_canary(
        None, 600_000
    )


# -- providers over the scenario ---------------------------------------------------------------


def test_now_puts_the_isolated_provider_first(reads: ReadModels) -> None:
    rows, problem = fleet.providers_now(reads, None, END_MS)
    assert problem is None
    assert len(rows) == 9  # 5 providers in eu, 4 in latam
    first = rows[0]
    assert (first.region, first.provider, first.isolated) == ("eu", "evolution", True)
    assert first.breaker in (1, 2)  # cycling open and half-open while it stays down
    assert first.error_ratio is None  # isolated: nothing sent, so no ratio
    eu = [r for r in rows[1:] if r.region == "eu"]
    assert all(r.error_ratio == pytest.approx(0.06) for r in eu)  # the brownout
    assert all(r.p99_s is not None and r.p99_s > 1 for r in eu)  # timeouts at 2 s
    latam = [r for r in rows if r.region == "latam"]
    assert all(r.error_ratio == pytest.approx(0.002) and r.breaker == 0 for r in latam)
    only, _ = fleet.providers_now(reads, "latam", END_MS)
    assert {r.region for r in only} == {"latam"}


def test_latency_and_errors_per_provider_and_minute(reads: ReadModels) -> None:
    latency, problem = fleet.provider_latency(reads, None, ALL)
    assert problem is None
    eu = by_region(latency)["eu"]
    assert eu.rows == ("evolution", "netent", "playngo", "pragmatic-play", "spribe")
    assert len(eu.t_ms) == 121 and eu.t_ms[0] == START_MS
    before, down = cell(eu, "evolution", "11:00"), cell(eu, "evolution", "11:16")
    assert before is not None and before < 0.2
    assert down is not None and down > 1
    assert cell(eu, "evolution", "11:30") is None  # isolated: no calls, no latency
    errors, _ = fleet.provider_errors(reads, None, ALL)
    eu_errors = by_region(errors)["eu"]
    assert cell(eu_errors, "evolution", "11:16") == pytest.approx(0.95)
    assert cell(eu_errors, "netent", "10:19") == pytest.approx(0.4)
    assert cell(by_region(errors)["latam"], "ezugi", "11:30") == pytest.approx(0.002)


def test_breakers_isolation_and_canaries_over_time(reads: ReadModels) -> None:
    breakers, problem = fleet.breakers(reads, "eu", ALL)
    assert problem is None and [g.title for g in breakers] == ["eu"]
    (eu,) = breakers
    assert [note(eu, "evolution", t) for t in ("11:15", "11:16", "11:18", "11:19")] == [
        "closed",
        "open",
        "half-open",
        "open",
    ]
    assert note(eu, "netent", "10:19") == "open"
    routes = by_region(fleet.isolation(reads, None, ALL)[0])
    assert [note(routes["eu"], "evolution", t) for t in ("11:16", "11:17", "12:00")] == [
        "serving",
        "isolated",
        "isolated",
    ]
    assert [note(routes["latam"], "spribe", t) for t in ("10:44", "10:50", "11:00", "11:10")] == [
        "isolated",
        "canary 10%",
        "canary 50%",
        "serving",
    ]


def test_launch_success_per_provider_counts_failover_as_success(reads: ReadModels) -> None:
    curves, problem = fleet.launch_success(reads, "eu", ALL)
    assert problem is None
    assert {c.labels["region"] for c in curves} == {"eu"}
    assert value(curves, "11:00", provider="netent") > 0.999
    down = {c.labels["provider"]: value(curves, "11:16", **c.labels) for c in curves}
    assert min(down, key=lambda p: down[p]) == "evolution" and down["evolution"] < 0.8
    assert math.isnan(value(curves, "11:30", provider="evolution"))  # isolated: no launches
    # netent's launches at 11:30: 2/s its own, 0.67/s evolution's (failover), 0.4/s failed
    assert value(curves, "11:30", provider="netent") == pytest.approx(2.67 / 3.07, abs=0.01)


# -- wallet ------------------------------------------------------------------------------------


def test_the_wallet_answers_but_eu_wins_time_out_and_queue(reads: ReadModels) -> None:
    answered, problem = fleet.wallet_answered(reads, ALL)
    assert problem is None
    assert value(answered, "11:50", region="eu", operation="win") == pytest.approx(1, abs=1e-4)
    assert value(answered, "11:58", region="eu", operation="win") < 0.995
    assert value(answered, "11:58", region="eu", operation="bet") == pytest.approx(1, abs=1e-4)
    operator = value(answered, "11:58", region="operator", operation="win")
    assert operator == pytest.approx(1, abs=1e-4)  # the wallet did answer, too slowly
    queue, _ = fleet.wallet_queue(reads, ALL)
    assert value(queue, "11:53", region="eu", gauge="depth") == 0
    assert value(queue, "11:57", region="eu", gauge="depth") == 32
    assert value(queue, "11:58", region="eu", gauge="depth") == 6  # the replay settled 34
    assert value(queue, "11:57", region="eu", gauge="oldest") == 210
    replays, _ = fleet.wallet_replays(reads, ALL)
    # the replay of 11:58 stands out of one background retry a minute, and the wallet saw
    # the same calls come again
    for labels in (
        {"region": "eu", "outcome": "settled"},
        {"region": "operator", "operation": "win"},
    ):
        peak = value(replays, "11:58", **labels)
        assert peak > 15 * value(replays, "11:57", **labels) > 0
    assert value(replays, "11:58", region="eu", outcome="failed") > 0
    latency, _ = fleet.wallet_latency(reads, HOUR)
    p50, p99 = (value(latency, "11:30", region="eu", quantile=q) for q in ("p50", "p99"))
    assert 0.025 < p50 < 0.05 < 0.1 < p99 < 0.25


def test_the_wallet_slos_and_their_budget(reads: ReadModels) -> None:
    budget, problems = fleet.wallet_budget(reads, HOUR)
    assert problems == []
    assert {(r.slo.id, r.labels["region"]) for r in budget.rows} == {
        (f"wallet-wallet-{name}", region)
        for name in ("success", "latency")
        for region in ("eu", "latam")
    }
    lefts = [r.budget_remaining for r in budget.rows]
    assert lefts == sorted(x for x in lefts if x is not None)
    success_eu = value(budget.budget, "12:00", slo="wallet-success", region="eu")
    assert success_eu < value(budget.budget, "11:50", slo="wallet-success", region="eu")


# -- regions -----------------------------------------------------------------------------------


def test_region_health_weights_and_failovers(reads: ReadModels) -> None:
    (health,), problem = fleet.region_states(reads, ALL)
    assert problem is None and health.rows == ("eu", "latam")
    assert [note(health, "eu", t) for t in ("11:49", "11:50", "11:51", "11:52")] == [
        "up",
        "down",
        "down",
        "up",
    ]
    assert note(health, "latam", "10:45") == "drained"
    weights, _ = fleet.region_weights(reads, ALL)
    assert value(weights, "11:50", region="eu") == 0
    assert value(weights, "11:50", region="latam") == 40
    counts, _ = fleet.failover_counts(reads, View(range="6h").window(END_MS))
    found = {(c.region, c.kind): round(c.count) for c in counts}
    assert found == {
        ("eu", "breaker_open"): 17,  # netent twice, evolution every three minutes
        ("eu", "provider_failover"): 6840,
        ("eu", "region_failover"): 480,
        ("latam", "breaker_open"): 0,
        ("latam", "provider_failover"): 1080,  # spribe's 15 minutes of isolation
        ("latam", "region_failover"): 0,
    }
    sessions, _ = fleet.sessions(reads, ALL)
    assert value(sessions, "11:51", region="latam") > value(sessions, "11:49", region="latam")


class Failing:
    def instant(self, expr: str, time_ms: int) -> Any:
        raise QueryError("remote Prometheus answered 503")

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> Any:
        raise QueryError("remote Prometheus answered 503")


def test_a_querier_that_cannot_answer_becomes_a_problem(reads: ReadModels) -> None:
    broken = dataclasses.replace(reads, querier=Failing())
    for data, problem in (
        fleet.provider_latency(broken, None, HOUR),
        fleet.providers_now(broken, None, END_MS),
        fleet.wallet_queue(broken, HOUR),
        fleet.region_states(broken, HOUR),
        fleet.failover_counts(broken, HOUR),
    ):
        assert data == []
        assert problem is not None and "503" in problem
    budget, problems = fleet.wallet_budget(broken, HOUR)
    assert budget.rows == () and len(problems) == 2


# -- shaping, figures, tables --------------------------------------------------------------------

WINDOW = Window(start_ms=0, end_ms=4 * MINUTE, step_ms=MINUTE)


def curve(values: Sequence[float], **labels: str) -> Curve:
    return Curve(
        labels=labels, t_ms=tuple(i * MINUTE for i in range(len(values))), values=tuple(values)
    )


def test_curves_land_on_the_steps_with_gaps_where_nothing_was_reported() -> None:
    sparse = Curve(
        labels={"region": "eu", "provider": "a"}, t_ms=(0, 2 * MINUTE), values=(1, math.nan)
    )
    (grid,) = fleet.grids([sparse], WINDOW, group="region", row="provider")
    assert grid.cells == ((1.0, None, None, None, None),)
    routed = fleet.combine([[grid], [grid]], lambda off, _c: fleet.routing_cell(off, 10.0))
    assert routed[0].notes == (("isolated", "", "", "", ""),)
    assert fleet.routing_cell(0.0, 10.0) == (1.0, "canary 10%")
    assert fleet.region_cell(1.0, 1.0, 1.0) == (2.0, "down")  # down wins over drained
    assert fleet.region_cell(1.0, 1.0, 0.0) == (1.0, "drained")
    assert fleet.breaker_cell(7.0) == (None, "")


def test_heatmaps_share_one_colour_scale_and_say_when_empty() -> None:
    grids = fleet.grids(
        [curve([0.1, 2.0], region=r, provider=p) for r in ("eu", "latam") for p in ("a", "b")],
        WINDOW,
        group="region",
        row="provider",
    )
    fig = fleet_figures.latency_heatmap(grids, WINDOW)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert {t.coloraxis for t in fig.data} == {"coloraxis"}
    assert list(fig.data[0].z[0][:2]) == [100.0, 2000.0]  # in ms
    assert fig.layout.coloraxis.cmax == 1000  # red from ProviderLatencyHigh's 1 s
    assert [fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text] == ["eu", "latam"]
    empty = fleet_figures.error_heatmap([], WINDOW)
    assert not empty.data and "no errors in this range" in empty.layout.annotations[0].text


def test_states_are_coloured_by_name_with_a_legend() -> None:
    (grid,) = fleet.grids(
        [curve([0, 1, 2], region="eu", provider="a")], WINDOW, group="region", row="provider"
    )
    fig = fleet_figures.breaker_figure([fleet.combine([[grid]], fleet.breaker_cell)[0]], WINDOW)
    heat, *legend = fig.data
    assert list(heat.text[0][:3]) == ["closed", "open", "half-open"]
    assert [(t.name, t.marker.color) for t in legend] == [
        ("closed", fleet_figures.GREEN),
        ("open", fleet_figures.RED),
        ("half-open", fleet_figures.ORANGE),
    ]


def test_lines_in_facets_keep_one_colour_and_one_legend_entry_per_name() -> None:
    found = [
        curve([1.0, 0.9], region="eu", operation="win"),
        curve([1.0, 1.0], region="eu", operation="bet"),
        curve([1.0, 1.0], region="operator", operation="win"),
    ]
    fig = fleet_figures.wallet_answered_figure(found, WINDOW)
    assert [a.text for a in fig.layout.annotations][:1] == ["eu"]
    assert "operator wallet" in fig.layout.annotations[1].text  # the operator's count last
    wins = [t for t in fig.data if t.name == "win"]
    assert len(wins) == 2 and wins[0].line.color == wins[1].line.color
    assert [t.showlegend for t in wins] == [True, False]
    assert list(wins[0].y) == pytest.approx([100.0, 90.0])
    low, high = fig.layout.yaxis.range
    assert low < 90 and 100 < high < 101  # noise near 100% stays flat, the fall shows
    assert fleet_figures.wallet_answered_figure([], WINDOW).layout.annotations


def props(component: Any) -> Iterator[dict[str, Any]]:
    """Every component's props in a tree."""
    if isinstance(component, list | tuple):
        for child in component:
            yield from props(child)
    elif hasattr(component, "to_plotly_json"):
        found = component.to_plotly_json()["props"]
        yield found
        yield from props(found.get("children"))


def test_the_tables_pass_no_null_colour_mantine_would_reject() -> None:
    rows = [
        ProviderNow(
            region="eu", provider="a", p99_s=None, error_ratio=None, breaker=1,
            isolated=True, canary_percent=100.0,
        ),
        ProviderNow(
            region="eu", provider="b", p99_s=0.05, error_ratio=0.001, breaker=0,
            isolated=False, canary_percent=10.0,
        ),
    ]  # fmt: skip
    counts = [fleet.FailoverCount(region="eu", kind="breaker_open", count=2.6)]
    for tree in (fleet_panels.providers_table(rows), fleet_panels.failover_table(counts)):
        assert all(p.get("c", "") is not None for p in props(tree))
    text = str(fleet_panels.providers_table(rows))
    assert "isolated" in text and "10%" in text and "no calls sent" in text
    assert "'3'" in str(fleet_panels.failover_table(counts))  # whole events
