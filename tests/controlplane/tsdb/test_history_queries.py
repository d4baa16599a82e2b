"""The engine over a store with a long-term tier: 30-day SLO queries see 30 days."""

from __future__ import annotations

import numpy as np
import pytest

from controlplane.model.series import SeriesBatch, labels_from
from controlplane.promql.engine import Engine
from controlplane.promql.results import ResultType
from controlplane.tsdb.downsample import bucket_end
from controlplane.tsdb.history import History, HistoryConfig
from controlplane.tsdb.store import Store

M = 60_000
RES = 5 * M
DAY = 24 * 60 * M
T0 = 1_700_000_000_000 // RES * RES
RATIO = 'slo:sli_error:ratio_rate5m{slo_id="a"}'
BUDGET = 'slo:period_error_budget_remaining:ratio{slo_id="a"}'
MINUTES = 31 * 24 * 60


def _raw() -> tuple[np.ndarray, np.ndarray]:
    """A 5m error ratio recorded every minute (11 s into it) for 31 days: quiet, then an
    incident on the last day, which a plain average would weigh five times over."""
    t = T0 + np.arange(MINUTES, dtype=np.int64) * M + 11_000
    ratio = np.random.default_rng(7).random(MINUTES) * 0.002
    ratio[-DAY // M + 60 : -DAY // M + 180] = 0.05
    return t, ratio


@pytest.fixture(scope="module")
def month() -> tuple[Store, int]:
    """A store keeping a day raw and 31 days in its tier. The 30 older days go into the tier
    through the very call retention makes (`absorb`), synthesised rather than appended a
    minute at a time; the last day is appended and retention applied, as in production."""
    t, ratio = _raw()
    names = ("slo:sli_error:ratio_rate5m", "slo:period_error_budget_remaining:ratio")
    labels = [labels_from({"__name__": name, "slo_id": "a"}) for name in names]
    history = History(HistoryConfig(resolution_ms=RES, retention_ms=31 * DAY))
    store = Store(retention_ms=DAY, history=history)
    split = bucket_end(int(t[-1]) - DAY - 60 * M, RES)  # absorb takes whole buckets
    old = t <= split
    history.absorb(
        SeriesBatch(
            labels=sorted(labels),
            timestamps=np.tile(t[old], 2),
            values=np.concatenate([1 - ratio[old], ratio[old]]),  # in label order
            offsets=np.array([0, old.sum(), 2 * old.sum()], np.int64),
        ),
        split,
    )
    refs = [store.series_ref(lb)[0] for lb in labels]
    for k in np.flatnonzero(~old).tolist():
        store.append_many(refs, int(t[k]), [ratio[k], 1 - ratio[k]])
        if k % 10 == 0:
            store.apply_retention()
    store.apply_retention()
    return store, int(t[-1])


def _period_from_raw(now: int) -> float:
    """The mean of `x[30d:5m]` over the raw samples: the newest sample at or before each
    5-minute step, within the 5-minute lookback."""
    t, ratio = _raw()
    steps = np.arange((now - 30 * DAY) // RES * RES + RES, now + 1, RES)
    at = np.searchsorted(t, steps, side="right") - 1
    found = (at >= 0) & (steps - t[np.maximum(at, 0)] < RES)
    return float(ratio[at[found]].mean())


def test_a_30_day_range_query_returns_points_older_than_raw_retention(
    month: tuple[Store, int],
) -> None:
    tiered, now = month
    result = Engine(tiered).range(BUDGET, now - 30 * DAY, now, 3_600_000)
    assert result.type is ResultType.MATRIX and len(result.matrix) == 1
    points = result.matrix[0].timestamps
    assert len(points) == 30 * 24 + 1  # a point at every step: no gap at the raw floor
    assert int(points[0]) == now - 30 * DAY
    assert (points < now - DAY).sum() == 29 * 24  # older than the raw day


def test_range_selectors_over_30_days_read_both_tiers(month: tuple[Store, int]) -> None:
    tiered, now = month
    count = Engine(tiered).instant(f"count_over_time({RATIO}[30d])", now).vector[0].value
    # a sample per 5 minutes below the raw floor, a sample per minute above it
    assert count == pytest.approx(29 * 288 + 24 * 60, abs=6)


def test_the_period_ratio_is_the_same_from_the_tier_as_from_raw_samples(
    month: tuple[Store, int],
) -> None:
    tiered, now = month
    grid = f"{RATIO}[30d:5m]"  # as controlplane/slo/generate.py records the period's ratio
    period = f"sum_over_time({grid}) / count_over_time({grid})"
    over_tier = Engine(tiered).instant(period, now).vector[0].value
    assert over_tier == pytest.approx(_period_from_raw(now), rel=1e-12)
    # the plain average weighs the raw day (and its incident) five times over the tier's days
    plain = f"sum_over_time({RATIO}[30d]) / count_over_time({RATIO}[30d])"
    assert Engine(tiered).instant(plain, now).vector[0].value > 1.3 * over_tier
