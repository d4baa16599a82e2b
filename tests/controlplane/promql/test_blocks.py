"""Evaluation a block of series (or of steps) at a time gives exactly the answers of one block,
and the linear-time helpers agree with the searches and sorts they replace."""

from __future__ import annotations

import numpy as np
import pytest

from controlplane.model.series import STALE_NAN, Series, labels_from
from controlplane.promql import Engine, MemorySource, selectors
from controlplane.promql.aggregations import stable_order

T0 = 1_700_000_000_000
QUERIES = [
    "rate(m[2m])",
    "sum by (g) (rate(m[5m]))",
    "sum without (i) (increase(m[90s])) / ignoring (g) group_left count(m)",
    "max_over_time(m[3m])",
    "avg by (g) (avg_over_time(m[4m]))",
    "predict_linear(m[5m], time() - 1.7e9)",
    "quantile by (g) (time() / 1e12 - 1.7, m)",
    "quantile_over_time(0.9, m[5m])",
    "topk(2, m)",
    "histogram_quantile(0.9, sum by (le, g) (rate(b[5m])))",
    "m offset 1m",
    "timestamp(m)",
    "sum(rate(m[1m:15s]))",
]


def telemetry(seed: int = 5) -> list[Series]:
    """Irregular scrapes, gaps, a counter reset, NaNs and staleness markers."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(40):
        n = int(rng.integers(0, 120))
        ts = np.sort(rng.choice(np.arange(3600), size=n, replace=False)) * 1000 + T0
        values = np.cumsum(rng.poisson(2, n)).astype(float)
        if n > 20:
            values[n // 2 :] -= values[n // 2] - 1
            values[int(rng.integers(0, n))] = STALE_NAN
            values[int(rng.integers(0, n))] = np.nan
        labels = {"__name__": "m", "i": str(i), "g": str(i % 3)}
        out.append(Series(labels=labels_from(labels), timestamps=ts, values=values))
    times = np.arange(0, 3600, 15, dtype=np.int64) * 1000 + T0
    for g in range(3):
        for k, le in enumerate(("0.1", "1", "+Inf")):
            counts = np.cumsum(rng.poisson(1 + k, len(times))).astype(float) * (k + 1)
            labels = {"__name__": "b", "g": str(g), "le": le}
            out.append(Series(labels=labels_from(labels), timestamps=times, values=counts))
    return out


def answers(engine: Engine) -> list[object]:
    out: list[object] = []
    for expr in QUERIES:
        result = engine.range(expr, T0 + 300_000, T0 + 3_500_000, 30_000)
        assert result.matrix is not None
        out.append([(s.labels, s.timestamps.tobytes(), s.values.tobytes()) for s in result.matrix])
        instant = engine.instant(expr, T0 + 1_234_000)
        vector = instant.vector or ()
        out.append([(s.labels, np.float64(s.value).tobytes()) for s in vector])
    return out


@pytest.mark.parametrize("block", [1, 7, 64])
def test_small_blocks_answer_exactly_as_one_block(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    engine = Engine(MemorySource(telemetry()))
    whole = answers(engine)
    monkeypatch.setattr(selectors, "BLOCK_WINDOWS", block)
    assert answers(engine) == whole


def test_counts_upto_matches_a_search_per_series() -> None:
    rng = np.random.default_rng(1)
    sizes = rng.integers(0, 30, 25)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    stamps = [np.sort(rng.choice(1000, size=k, replace=False)) for k in sizes]
    flat = np.concatenate(stamps).astype(np.int64)
    times = np.sort(rng.integers(-50, 1050, 40)).astype(np.int64)
    got = selectors.counts_upto(flat, offsets, times)
    for row, ts in enumerate(stamps):
        want = offsets[row] + np.searchsorted(ts, times, side="right")
        assert np.array_equal(got[row], want)


@pytest.mark.parametrize("bound", [3, 1 << 16, (1 << 16) + 1, 1 << 32, 1 << 40])
def test_stable_order_is_a_stable_argsort(bound: int) -> None:
    keys = np.random.default_rng(bound % 97).integers(0, bound, 5000)
    assert np.array_equal(stable_order(keys, bound), np.argsort(keys, kind="stable"))
