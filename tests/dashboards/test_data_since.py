"""`slos.data_since`: where a series' data begins, so a page can say what is not there."""

from __future__ import annotations

from controlplane.model.series import labels_from
from controlplane.promql.engine import Engine
from controlplane.tsdb.store import Store
from dashboards import slos
from dashboards.view import View

M = 60_000
END_MS = 1_700_000_000_000 // M * M
BUDGET = 'slo:period_error_budget_remaining:ratio{slo_id="a"}'


def _engine(first_ms: int) -> Engine:
    store = Store(retention_ms=40 * 24 * 60 * M)
    labels = labels_from({"__name__": "slo:period_error_budget_remaining:ratio", "slo_id": "a"})
    for t in range(first_ms, END_MS + 1, M):
        store.append(labels, t, 0.9)
    return Engine(store)


def test_the_earliest_sample_in_the_window_to_one_step() -> None:
    window = View(range="24h").window(END_MS)
    since = slos.data_since(_engine(END_MS - 3 * 60 * M), BUDGET, window)
    assert since is not None
    assert END_MS - 3 * 60 * M <= since < END_MS - 3 * 60 * M + window.step_ms
    assert since > window.start_ms + window.step_ms  # the page says: nothing before `since`


def test_data_older_than_the_window_starts_with_the_window() -> None:
    window = View(range="1h").window(END_MS)
    since = slos.data_since(_engine(END_MS - 3 * 60 * M), BUDGET, window)
    assert since is not None and since <= window.start_ms + window.step_ms


def test_no_data_at_all_is_none() -> None:
    window = View(range="1h").window(END_MS)
    assert slos.data_since(_engine(END_MS - 3 * 60 * M), 'absent{slo_id="a"}', window) is None
