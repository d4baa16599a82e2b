from __future__ import annotations

import numpy as np

from controlplane.model.series import Matcher, MatchOp, Series, labels_from
from controlplane.promql import MemorySource


def make(name: str, ts: list[int], **labels: str) -> Series:
    return Series(
        labels=labels_from({"__name__": name, **labels}),
        timestamps=np.asarray(ts, dtype=np.int64),
        values=np.arange(len(ts), dtype=np.float64),
    )


SOURCE = MemorySource(
    [
        make("up", [0, 10, 20], job="api", group="Production"),
        make("up", [5, 15], job="app"),
        make("down", [30], job="api"),
    ]
)


def names(matchers: list[Matcher], start: int = 0, end: int = 100) -> list[dict[str, str]]:
    return [dict(s.labels) for s in SOURCE.select(matchers, start, end)]


def m(name: str, op: str, value: str) -> Matcher:
    return Matcher(name=name, op=MatchOp(op), value=value)


def test_matchers_follow_prometheus_semantics() -> None:
    assert len(names([m("__name__", "=", "up")])) == 2
    # A missing label matches as the empty string.
    assert [s["job"] for s in names([m("group", "!=", "Production")])] == ["api", "app"]
    assert [s["job"] for s in names([m("__name__", "=", "up"), m("group", "=", "")])] == ["app"]
    assert len(names([m("job", "=~", "ap.")])) == 3
    assert len(names([m("job", "=~", "ap")])) == 0  # regexes are anchored
    assert len(names([m("group", "=~", "(?i)prod.*")])) == 1
    assert len(names([m("group", "=~", ".*((?i)DUC).*")])) == 1
    assert len(names([m("job", "!~", "api|app")])) == 0


def test_time_range_is_inclusive_and_batch_matches_select() -> None:
    batch = SOURCE.select_batch([m("__name__", "=", "up")], 10, 15)
    assert [dict(lb)["job"] for lb in batch.labels] == ["api", "app"]
    assert batch.timestamps.tolist() == [10, 15] and batch.offsets.tolist() == [0, 1, 2]
    assert not SOURCE.select([m("__name__", "=", "down")], 0, 29)


def test_label_names_and_values() -> None:
    assert SOURCE.label_names([m("job", "=", "api")], 0, 100) == ["__name__", "group", "job"]
    assert SOURCE.label_values("job", [m("__name__", "=~", ".+")], 0, 100) == ["api", "app"]


def test_samples_of_the_same_series_are_merged() -> None:
    merged = MemorySource([make("x", [0, 10]), make("x", [10, 20])])
    (series,) = merged.select([m("__name__", "=", "x")], 0, 100)
    assert series.timestamps.tolist() == [0, 10, 20]
    assert series.values.tolist() == [0.0, 0.0, 1.0]  # the later value wins at t=10
