"""The embedded store: matchers, ranges, retention, append rules, against a simple model."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.errors import StoreError
from controlplane.model.series import STALE_NAN, Labels, Matcher, MatchOp, SeriesBatch, labels_from
from controlplane.tsdb.store import Store


def L(**kw: str) -> Labels:
    return labels_from(kw)


def M(name: str, op: str, value: str) -> Matcher:
    return Matcher(name=name, op=MatchOp(op), value=value)


@pytest.fixture
def store() -> Store:
    s = Store(chunk_samples=4)
    series = [
        L(__name__="up", job="a", instance="1"),
        L(__name__="up", job="a", instance="2"),
        L(__name__="up", job="b", instance="1", env=""),
        L(__name__="http_total", job="b", code="200"),
        L(__name__="http_total", job="b", code="500", env="prod"),
    ]
    for i, labels in enumerate(series):
        for t in range(0, 100_000, 10_000):
            s.append(labels, t, float(i * 100 + t // 10_000))
    return s


def _names(batch: SeriesBatch) -> list[dict[str, str]]:
    return [dict(labels) for labels in batch.labels]


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ([M("__name__", "=", "up")], 3),
        ([M("job", "=", "a")], 2),
        ([M("job", "!=", "a")], 3),
        ([M("env", "=", "")], 4),  # series without env
        ([M("env", "!=", "")], 1),  # series with any env
        ([M("env", "!=", "prod")], 4),  # includes series without env
        ([M("code", "=~", "5..")], 1),
        ([M("code", "=~", "2.*|")], 4),  # the regex matches "": series without code too
        ([M("code", "!~", "2.*")], 4),
        ([M("__name__", "=~", "up|http_total"), M("job", "=", "b")], 3),
        ([M("instance", "=~", "1")], 2),  # anchored: "1" only, not "11"
        ([M("instance", "=~", ".*")], 5),
        ([M("nope", "=", "x")], 0),
        ([M("job", "=~", "[AaB]")], 2),  # case-sensitive: "b" is not "B"
    ],
)
def test_matchers(store: Store, matchers: list[Matcher], expected: int) -> None:
    assert len(store.select_batch(matchers, 0, 10**9)) == expected


def test_results_are_ordered_by_labels(store: Store) -> None:
    batch = store.select_batch([], 0, 10**9)
    assert batch.labels == sorted(batch.labels)
    assert [s.labels for s in store.select([], 0, 10**9)] == batch.labels


def test_ranges_are_inclusive(store: Store) -> None:
    (s,) = store.select([M("job", "=", "a"), M("instance", "=", "1")], 20_000, 50_000)
    assert s.timestamps.tolist() == [20_000, 30_000, 40_000, 50_000]
    assert s.values.tolist() == [2.0, 3.0, 4.0, 5.0]
    # a series with no sample inside the range is left out
    assert store.select([M("job", "=", "a"), M("instance", "=", "1")], 20_001, 29_999) == []


def test_label_names_and_values(store: Store) -> None:
    assert store.label_names([], 0, 10**9) == ["__name__", "code", "env", "instance", "job"]
    assert store.label_names([M("__name__", "=", "up")], 0, 10**9) == [
        "__name__",
        "instance",
        "job",
    ]
    assert store.label_values("job", [], 0, 10**9) == ["a", "b"]
    assert store.label_values("code", [M("env", "=", "prod")], 0, 10**9) == ["500"]
    assert store.label_values("job", [], 200_000, 300_000) == []


def test_append_rules() -> None:
    s = Store()
    ref, created = s.series_ref(L(__name__="x"))
    assert created and s.series_ref(L(__name__="x")) == (ref, False)
    assert s.append_many([ref], 1000, [1.0]).appended == 1
    assert s.append_many([ref], 1000, [1.0]).appended == 0  # same sample again: ignored
    r = s.append_many([ref], 1000, [2.0])
    assert (r.appended, r.out_of_order) == (0, 1)
    assert s.append_many([ref], 999, [2.0]).out_of_order == 1
    r = s.append_many([ref, ref], 2000, [3.0, 4.0])
    assert (r.appended, r.duplicates) == (1, 1)
    with pytest.raises(StoreError, match="unknown series ref"):
        s.append_many([ref + 5], 3000, [1.0])
    with pytest.raises(StoreError, match="timestamp out of range"):
        s.append_many([ref], 2**62, [1.0])
    with pytest.raises(StoreError, match="at least one label"):
        s.series_ref(())


def test_staleness_markers_are_kept_bit_for_bit() -> None:
    s = Store(chunk_samples=3)
    for t, v in enumerate([1.0, STALE_NAN, float("nan"), -0.0, 5.0, STALE_NAN, 7.0]):
        s.append(L(__name__="x"), t, v)
    (series,) = s.select([], 0, 100)
    want = [1.0, STALE_NAN, float("nan"), -0.0, 5.0, STALE_NAN, 7.0]
    assert [struct.pack("<d", v) for v in series.values] == [struct.pack("<d", v) for v in want]


def test_retention_drops_samples_then_series() -> None:
    s = Store(retention_ms=10_000, chunk_samples=4)
    for t in range(0, 30_000, 1000):
        s.append(L(__name__="live"), t, 1.0)
        if t < 5000:
            s.append(L(__name__="gone"), t, 1.0)
    generation = s.generation
    assert s.apply_retention() == 1  # "gone" has no samples newer than 29000 - 10000
    assert s.generation != generation
    (live,) = s.select([], 0, 10**9)
    assert live.timestamps.min() >= 19_000 and live.timestamps.max() == 29_000
    assert s.label_values("__name__", [], 0, 10**9) == ["live"]
    stats = s.stats()
    assert stats.series == 1 and stats.block_samples + stats.head_samples <= 16


def test_deleted_refs_are_reused_only_after_a_quarantine_round() -> None:
    s = Store(retention_ms=10)
    old, _ = s.series_ref(L(__name__="old"))
    s.append_many([old], 0, [1.0])
    s.append(L(__name__="keep"), 1000, 1.0)
    assert s.apply_retention() == 1
    assert s.append_many([old], 2000, [1.0]).unknown == 1  # a stale cached ref is refused
    assert s.series_ref(L(__name__="new1"))[0] != old
    s.apply_retention()
    assert old in {s.series_ref(L(__name__=f"n{i}"))[0] for i in range(3)}


def test_export_and_import(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "range.npz"
    assert store.export_range(20_000, 60_000, path) == 5
    other = Store()
    result = other.import_range(path)
    assert result.appended == 5 * 5
    a = store.select_batch([], 20_000, 60_000)
    b = other.select_batch([], 0, 10**9)
    assert a.labels == b.labels and np.array_equal(a.timestamps, b.timestamps)
    assert np.array_equal(a.values, b.values)
    assert other.import_range(path).appended == 0  # importing again adds nothing
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(StoreError, match="cannot read export"):
        other.import_range(tmp_path / "bad.npz")


def test_blocks_and_head_stitch_across_many_cuts() -> None:
    s = Store(chunk_samples=5)
    refs = [s.series_ref(L(__name__="m", i=str(i)))[0] for i in range(50)]
    for k in range(37):
        live = refs[k % 3 :: 1 + (k % 2)]  # series come and go: rows get out of phase
        s.append_many(live, k * 1000, np.arange(len(live)) + k)
    batch = s.select_batch([], 0, 10**9)
    for i in range(len(batch)):
        series = batch.series(i)
        assert np.all(np.diff(series.timestamps) > 0)
    assert s.stats().blocks > 5


# -- random model test -----------------------------------------------------------------------

_ops = st.lists(
    st.tuples(
        st.lists(st.integers(0, 7), min_size=1, max_size=8, unique=True),
        st.integers(0, 40),  # time step forward (0 = same timestamp)
        st.sampled_from([0.0, 1.0, 2.5, float("nan"), STALE_NAN, -0.0, 1e18, 0.1]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=120, deadline=None)
@given(_ops, st.integers(2, 6), st.data())
def test_random_appends_match_a_model(
    ops: list[tuple[list[int], int, float]], chunk: int, data: st.DataObject
) -> None:
    s = Store(chunk_samples=chunk)
    refs = [s.series_ref(L(__name__="m", i=str(i)))[0] for i in range(8)]
    model: dict[int, list[tuple[int, float]]] = {i: [] for i in range(8)}
    t = 0
    for which, step, value in ops:
        t += step
        s.append_many([refs[i] for i in which], t, [value + i for i in which])
        for i in which:
            if not model[i] or model[i][-1][0] < t:
                model[i].append((t, value + i))
    start = data.draw(st.integers(-5, t + 5))
    end = data.draw(st.integers(start, t + 10))
    batch = s.select_batch([M("i", "=~", "[0-7]")], start, end)
    got = {dict(batch.series(k).labels)["i"]: batch.series(k) for k in range(len(batch))}
    for i, samples in model.items():
        inside = [(ts, v) for ts, v in samples if start <= ts <= end]
        if not inside:
            assert str(i) not in got
            continue
        series = got[str(i)]
        assert series.timestamps.tolist() == [ts for ts, _ in inside]
        assert [struct.pack("<d", v) for v in series.values] == [
            struct.pack("<d", v) for _, v in inside
        ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.text("abc", max_size=3), max_size=12), st.integers(0, 3)),
        min_size=1,
        max_size=8,
    )
)
def test_series_order_survives_churn(rounds: list[tuple[list[str], int]]) -> None:
    s = Store(retention_ms=10)
    t = 0
    for values, keep in rounds:
        t += 100
        for v in values:  # a few new series at a time: slotted in between neighbours
            s.append(L(__name__="m", a=v or "-", b=str(len(v))), t, 1.0)
        batch = s.select_batch([], 0, t)
        assert batch.labels == sorted(batch.labels)
        if keep == 0:
            s.apply_retention(t + 5)  # drops everything older than t - 5: churn


def test_regex_matchers_take_re2_inline_flags() -> None:
    from controlplane.model.series import Matcher, MatchOp

    m = Matcher(name="job", op=MatchOp.RE, value="(?i)wallet|region")
    assert m.matches("WALLET") and m.matches("region") and not m.matches("xwallet")
