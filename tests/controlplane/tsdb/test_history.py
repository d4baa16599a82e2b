"""The long-term tier: downsampling, its retention, reads across the raw floor, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controlplane.errors import StoreError
from controlplane.model.series import STALE_NAN, Matcher, MatchOp, SeriesBatch, labels_from
from controlplane.tsdb.checkpoint import Checkpointer
from controlplane.tsdb.downsample import last_per_bucket, merge_older
from controlplane.tsdb.history import SEAL_BUCKETS, History, HistoryConfig
from controlplane.tsdb.store import Store

M = 60_000
H = 60 * M
RES = 5 * M
T0 = 1_700_000_000_000 // RES * RES  # a bucket boundary
RATIO = {"__name__": "slo:sli_error:ratio_rate5m", "slo_id": "a"}


def batch(*series: tuple[dict[str, str], list[int], list[float]]) -> SeriesBatch:
    offsets = np.cumsum([0, *(len(t) for _, t, _ in series)])
    return SeriesBatch(
        labels=[labels_from(lb) for lb, _, _ in series],
        timestamps=np.array([x for _, t, _ in series for x in t], np.int64),
        values=np.array([x for _, _, v in series for x in v], np.float64),
        offsets=offsets.astype(np.int64),
    )


def tiered(raw_ms: int = H, keep_ms: int = 3 * 24 * H, match: str = "slo:.*") -> Store:
    config = HistoryConfig(match=match, resolution_ms=RES, retention_ms=keep_ms)
    return Store(retention_ms=raw_ms, history=History(config))


def fill(store: Store, minutes: range, regions: tuple[str, ...] = ("eu", "latam")) -> None:
    """One sample a minute (7 s past it) per region for the ratio, and a series the tier does
    not keep; retention every 10 minutes, as the scrape manager's job would run it."""
    refs = [store.series_ref(labels_from({**RATIO, "region": r}))[0] for r in regions]
    refs.append(store.series_ref(labels_from({"__name__": "other"}))[0])
    for k in minutes:
        store.append_many(refs, T0 + k * M + 7000, np.full(len(refs), float(k)))
        if k % 10 == 0:
            store.apply_retention()


def everything(store: Store, matchers: list[Matcher] | None = None) -> SeriesBatch:
    return store.select_batch(matchers or [], -(2**50), 2**50)


def test_last_value_per_bucket_stamped_at_the_bucket_end() -> None:
    raw = batch(
        ({"__name__": "a"}, [1, RES, RES + 1, 2 * RES - 1, 3 * RES + 5], [1, 2, 3, 4, 5]),
        ({"__name__": "b"}, [10, 20], [7, STALE_NAN]),
        ({"__name__": "c"}, [], []),
    )
    down = last_per_bucket(raw, RES)
    assert down.labels == [labels_from({"__name__": "a"}), labels_from({"__name__": "b"})]
    a, b = down.series(0), down.series(1)
    # a bucket is (k*res, (k+1)*res]: a sample at the bucket's end belongs to it
    assert a.timestamps.tolist() == [RES, 2 * RES, 4 * RES]
    assert a.values.tolist() == [2, 4, 5]
    # a staleness marker that ends a bucket is kept bit for bit: the series ended there
    assert b.timestamps.tolist() == [RES]
    assert b.values.view(np.uint64)[0] == np.float64(STALE_NAN).view(np.uint64)


def test_merge_puts_older_samples_first_and_keeps_label_order() -> None:
    older = batch(({"__name__": "a"}, [1, 2], [1, 2]), ({"__name__": "gone"}, [1], [9]))
    newer = batch(({"__name__": "a"}, [5, 6], [5, 6]), ({"__name__": "b"}, [5], [7]))
    merged = merge_older(older, newer)
    assert [dict(lb)["__name__"] for lb in merged.labels] == ["a", "b", "gone"]
    assert merged.series(0).timestamps.tolist() == [1, 2, 5, 6]
    assert merged.series(1).values.tolist() == [7]
    assert merged.series(2).timestamps.tolist() == [1]
    assert merge_older(batch(), newer) is newer
    # the tier's bucket past the raw floor gives way to the raw samples that cover it
    tier = batch(({"__name__": "a"}, [1, 5, 10], [1, 5, 10]), ({"__name__": "b"}, [4], [4]))
    merged = merge_older(tier, newer)
    assert merged.series(0).timestamps.tolist() == [1, 5, 6]
    assert merged.series(1).timestamps.tolist() == [4, 5]


def test_a_step_just_past_the_floor_still_finds_the_last_bucket() -> None:
    """The floor lands inside a bucket whose raw samples are all hidden below it: the tier's
    sample at the bucket's end stands in until the first raw sample (no gap, no duplicate)."""
    store = Store(retention_ms=H, history=History(HistoryConfig(resolution_ms=RES)))
    ref = store.series_ref(labels_from(RATIO))[0]
    for k in range(3 * 60):
        store.append_many([ref], T0 + k * M + 50_000, [float(k)])  # 50 s into each minute
    floor = T0 + 2 * H - 5_000  # 5 s before a bucket's end, after the minute's sample
    store.apply_retention(floor + H)
    s = store.select_batch([], T0, T0 + 3 * H).series(0)
    edge = T0 + 2 * H
    at = int(np.searchsorted(s.timestamps, edge))
    assert s.timestamps[at] == edge and s.values[at] == 119  # the sample 10 s before it
    assert s.timestamps[at + 1] == edge + 50_000 and (np.diff(s.timestamps) > 0).all()


def test_reads_cross_the_raw_floor_without_duplicates_or_gaps() -> None:
    store = tiered()
    fill(store, range(6 * 60))
    result = everything(store)
    assert [dict(lb)["__name__"] for lb in result.labels] == [
        "other",
        *["slo:sli_error:ratio_rate5m"] * 2,
    ]
    floor = store._floor_t
    other = result.series(0)
    assert other.timestamps.min() >= floor  # not kept: nothing below the raw floor
    for i in (1, 2):
        s = result.series(i)
        assert (np.diff(s.timestamps) > 0).all()
        old, new = s.timestamps < floor, s.timestamps >= floor
        # below the floor: one sample per 5 minutes at bucket ends, the bucket's last value
        assert s.timestamps[0] == T0 + RES and (s.timestamps[old] % RES == 0).all()
        assert np.array_equal(s.values[old], (s.timestamps[old] - T0) // M - 1)
        # from the floor on: every raw sample
        assert (np.diff(s.timestamps[new]) == M).all() and s.timestamps[new][0] - floor < M
        # the two parts meet within one bucket
        assert s.timestamps[new][0] - s.timestamps[old][-1] <= RES


def test_queries_that_stay_above_the_floor_read_raw_samples_only() -> None:
    store = tiered()
    fill(store, range(3 * 60))
    recent = store.select_batch([], store._floor_t, 2**50)
    assert all((np.diff(recent.series(i).timestamps) == M).all() for i in range(len(recent)))


def test_tier_retention_forgets_old_buckets_then_series() -> None:
    store = tiered(keep_ms=4 * H)
    fill(store, range(3 * 60), regions=("eu", "gone"))
    fill(store, range(3 * 60, 10 * 60), regions=("eu",))
    history = store.history
    assert history is not None
    result = everything(store, [Matcher(name="region", op=MatchOp.NE, value="")])
    assert [dict(lb)["region"] for lb in result.labels] == ["eu"]  # "gone" aged out entirely
    last_retention = T0 + 590 * M + 7000
    assert result.series(0).timestamps[0] >= last_retention - 4 * H
    assert history.stats().series == 1


def test_series_only_the_tier_holds_are_listed_for_old_ranges() -> None:
    store = tiered()
    fill(store, range(2 * 60), regions=("eu", "gone"))
    fill(store, range(2 * 60, 4 * 60), regions=("eu",))
    assert store.label_values("region", [], T0, T0 + 4 * H) == ["eu", "gone"]
    assert store.label_values("region", [], T0 + 3 * H + 30 * M, T0 + 4 * H) == ["eu"]
    names = store.label_names([Matcher(name="region", op=MatchOp.EQ, value="gone")], T0, T0 + H)
    assert names == ["__name__", "region", "slo_id"]


def test_feeding_the_same_raw_samples_twice_keeps_one_sample_per_bucket() -> None:
    history = History(HistoryConfig(resolution_ms=RES))
    raw = batch((RATIO, [T0 + M, T0 + 6 * M], [1, 2]))
    history.absorb(raw, T0 + 2 * RES)
    history.absorb(raw, T0 + 2 * RES)
    kept = history.select([], T0, T0 + H)
    assert kept.timestamps.tolist() == [T0 + RES, T0 + 2 * RES]


def test_buckets_are_sealed_into_compressed_blocks() -> None:
    store = tiered(raw_ms=H, keep_ms=5 * 24 * H)
    fill(store, range(0, 24 * 60, 5))  # one sample per 5 minutes: quick, the same buckets
    stats = store.stats().history
    assert stats is not None and stats.samples > 2 * 250
    assert store.history is not None
    blocks = store.history._blocks
    assert len(blocks) == 2 and {b.n for b in blocks} <= {SEAL_BUCKETS, SEAL_BUCKETS + 1}
    # small integer values as int8 deltas, regular times as one table row: ~1 B a sample
    assert all(b.nbytes < 2 * b.n * len(b.refs) for b in blocks)


def test_a_resolution_longer_than_the_raw_retention_is_refused() -> None:
    with pytest.raises(StoreError, match="longer than the store's retention"):
        tiered(raw_ms=RES - 1)
    store = tiered()
    with pytest.raises(StoreError, match="longer than the store's retention"):
        store.configure_history(HistoryConfig(resolution_ms=2 * H))
    with pytest.raises(StoreError, match="history match"):
        store.configure_history(HistoryConfig(match="slo:("))
    store.configure_history(HistoryConfig(match="x", names=frozenset({"y"}), resolution_ms=M))
    assert store.history is not None and store.history.config.matcher.matches("y")


def _same(a: SeriesBatch, b: SeriesBatch) -> None:
    assert a.labels == b.labels
    assert np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.timestamps, b.timestamps)
    assert np.array_equal(a.values.view(np.uint64), b.values.view(np.uint64))


def test_checkpoint_keeps_the_tier_through_snapshot_and_log_replay(tmp_path: Path) -> None:
    store = tiered()
    cp = Checkpointer(store, tmp_path, snapshot_interval_s=1e9)
    cp.load()
    fill(store, range(4 * 60))
    cp.snapshot()
    fill(store, range(4 * 60, 6 * 60))  # then only in the log, retention records included
    cp.checkpoint()
    assert cp._wal is not None
    cp._wal.close()  # a crash: no final snapshot
    again = tiered()
    restored = Checkpointer(again, tmp_path)
    restored.load()
    _same(everything(again), everything(store))
    assert again.history is not None and store.history is not None
    assert again.history.done_ms == store.history.done_ms
    assert again.stats().history == store.stats().history
    restored.close()
    third = tiered()
    final = Checkpointer(third, tmp_path)
    final.load()  # from the final snapshot alone
    _same(everything(third), everything(store))
    final.close()


def test_a_snapshot_without_a_tier_loads_into_a_store_with_one(tmp_path: Path) -> None:
    plain = Store(retention_ms=H)
    cp = Checkpointer(plain, tmp_path)
    cp.load()
    fill(plain, range(30))
    cp.close()
    store = tiered()
    loaded = Checkpointer(store, tmp_path)
    loaded.load()
    _same(everything(store), everything(plain))
    loaded.close()
