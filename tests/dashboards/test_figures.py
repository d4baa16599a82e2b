"""Figures are pure: the same data gives the same figure, and the figure says what it shows."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from controlplane.runbooks.store import Execution, State
from dashboards import figures
from dashboards.slos import BurnPair, Line
from dashboards.view import Window

T0 = 1_772_449_200_000  # 2026-03-02T11:00:00Z
WINDOW = Window(start_ms=T0, end_ms=T0 + 3_600_000, step_ms=60_000)
MONTH_S = 30 * 86_400.0


def line(values: list[float]) -> Line:
    return Line(
        name="x", t_ms=tuple(T0 + i * 60_000 for i in range(len(values))), values=tuple(values)
    )


def test_sli_marks_what_is_under_the_objective_and_spans_the_window() -> None:
    fig = figures.sli_figure(line([1.0, 0.999, 0.9, 0.85, 1.0]), 99.5, WINDOW)
    sli, under, objective = fig.data
    assert list(sli.y) == pytest.approx([100.0, 99.9, 90.0, 85.0, 100.0])
    assert [v if math.isfinite(v) else None for v in under.y] == [None, None, 90.0, 85.0, None]
    assert list(objective.y) == [99.5, 99.5]
    assert objective.name == "objective 99.5%"
    start, end = fig.layout.xaxis.range
    assert np.datetime64(start, "ms") == np.datetime64(WINDOW.start_ms, "ms")
    assert np.datetime64(end, "ms") == np.datetime64(WINDOW.end_ms, "ms")
    low, high = fig.layout.yaxis.range
    assert low < 85 and high > 100


def test_no_data_says_so_rather_than_drawing_an_empty_frame() -> None:
    for fig in (
        figures.sli_figure(None, 99.5, WINDOW),
        figures.budget_figure(line([]), WINDOW, MONTH_S),
        figures.burn_figure(()),
        figures.executions_figure((), WINDOW),
    ):
        assert not fig.data
        assert "no " in fig.layout.annotations[0].text


def test_the_ideal_burn_down_falls_to_zero_in_one_window() -> None:
    t = [0, 15 * 86_400_000, 30 * 86_400_000]
    assert figures.ideal_budget(t, 80.0, MONTH_S) == pytest.approx([80.0, 40.0, 0.0])
    fig = figures.budget_figure(line([1.0, 0.9, 0.5]), WINDOW, MONTH_S)
    left, ideal = fig.data
    assert list(left.y) == pytest.approx([100.0, 90.0, 50.0])
    assert ideal.y[0] == 100.0 and ideal.y[-1] == pytest.approx(100 * (1 - 120 / MONTH_S))


def test_burn_rates_are_drawn_against_each_alerts_factor() -> None:
    pairs = (
        BurnPair(
            severity="page", factor=14.4, long="1h", short="5m", long_rate=20.0, short_rate=26.0
        ),
        BurnPair(
            severity="ticket", factor=1.0, long="3d", short="6h", long_rate=0.5, short_rate=None
        ),
    )
    fig = figures.burn_figure(pairs)
    long, short, _legend = fig.data
    assert list(long.x) == ["page 14.4x<br>1h and 5m", "ticket 1x<br>3d and 6h"]
    assert list(long.text) == ["1h: 20x", "3d: 0.5x"]
    assert list(short.text) == ["5m: 26x", "6h: no data"]
    assert long.marker.color[0].startswith("rgba(250, 82, 82")  # over a page factor: red
    assert long.marker.color[1].startswith("rgba(64, 192, 87")  # under budget: green
    assert [s.y0 for s in fig.layout.shapes] == [14.4, 1.0]
    assert fig.layout.yaxis.type == "log"


def execution(runbook: str, state: State, at_s: float) -> Execution:
    return Execution(
        id=f"{runbook}-{at_s}",
        runbook=runbook,
        mode="auto",
        state=state,
        target_key="eu",
        trigger="alert",
        alert_fingerprint=None,
        labels={},
        value=None,
        params={},
        dry_run=False,
        requested_by="controlplane",
        approvals=(),
        reason="",
        created_at=at_s,
        updated_at=at_s,
        deadline=None,
        resolved_done=False,
    )


def test_executions_are_placed_by_start_and_coloured_by_outcome() -> None:
    found = [
        execution("isolate-provider", State.SUCCEEDED, T0 / 1000 + 60),
        execution("isolate-provider", State.FAILED, T0 / 1000 + 120),
        execution("drain-region", State.PENDING_APPROVAL, T0 / 1000 + 180),
    ]
    fig = figures.executions_figure(found, WINDOW)
    by_name = {trace.name: trace for trace in fig.data}
    assert set(by_name) == {"succeeded", "failed", "pending approval"}
    assert list(by_name["failed"].y) == ["isolate-provider"]
    assert by_name["failed"].marker.color == figures.RED
    when = by_name["pending approval"].x[0]
    assert datetime.fromisoformat(str(when)) == datetime(2026, 3, 2, 11, 3)


def test_figures_are_pure() -> None:
    data = line([1.0, 0.95])
    assert figures.sli_figure(data, 99.0, WINDOW) == figures.sli_figure(data, 99.0, WINDOW)
