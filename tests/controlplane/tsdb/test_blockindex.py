"""The block index answers what looking at every block answered: the blocks holding the
selected series in the time range, oldest first, through cuts, retention and snapshots."""

from __future__ import annotations

import numpy as np

from controlplane.model.series import Matcher, MatchOp, labels_from
from controlplane.tsdb.chunks import Block
from controlplane.tsdb.store import Store

STEP = 15_000


def scan(store: Store, refs: np.ndarray, start: int, end: int) -> list[Block]:
    """Every block in the time range that holds one of the refs, in the store's order."""
    blocks = [b for b in store._blocks if b.max_t >= start and b.min_t <= end]
    return [b for b in blocks if len(b.rows_of(refs)[0])]


def indexed(store: Store, refs: np.ndarray, start: int, end: int) -> list[Block]:
    return store._block_index.holding(store._blocks, refs, start, end)


def filled(groups: int = 6, per_group: int = 5, samples: int = 130) -> Store:
    """Groups of series appended separately (as targets and rule groups are), so each cuts
    blocks of its own, some series starting late."""
    store = Store(retention_ms=10**12, chunk_samples=16)
    refs = [
        [
            store.series_ref(labels_from({"__name__": f"m{g}", "i": str(i)}))[0]
            for i in range(per_group)
        ]
        for g in range(groups)
    ]
    for k in range(samples):
        for g, group in enumerate(refs):
            if k >= g * 10:
                store.append_many(group, k * STEP, np.full(len(group), float(k)))
    return store


def check(store: Store, rng: np.random.Generator, rounds: int = 40) -> None:
    live = store._index.match([])
    span = int(store._max_t) + STEP
    for _ in range(rounds):
        refs = np.unique(rng.choice(live, size=int(rng.integers(1, len(live) + 1))))
        start = int(rng.integers(-STEP, span))
        end = start + int(rng.integers(0, span))
        assert indexed(store, refs, start, end) == scan(store, refs, start, end)


def test_reads_visit_the_blocks_a_scan_finds() -> None:
    store = filled()
    assert len(store._blocks) > 20
    check(store, np.random.default_rng(1))


def test_the_index_follows_new_blocks_and_retention() -> None:
    rng = np.random.default_rng(2)
    store = filled()
    check(store, rng)
    ref = store.series_ref(labels_from({"__name__": "late", "i": "0"}))[0]
    for k in range(130, 200):
        store.append_many([ref], k * STEP, [1.0])
    check(store, rng)
    store.retention_ms = 60 * STEP
    store.apply_retention()
    check(store, rng)
    store.retention_ms = 20 * STEP
    store.apply_retention()  # most entries dead: the index is rebuilt
    check(store, rng)


def test_the_index_follows_a_loaded_snapshot() -> None:
    source = filled()
    copy = Store(retention_ms=10**12, chunk_samples=16)
    copy.import_state(*source.export_state())
    check(copy, np.random.default_rng(3))
    matcher = [Matcher(name="__name__", op=MatchOp.EQ, value="m2")]
    a = source.select_batch(matcher, 0, 10**9)
    b = copy.select_batch(matcher, 0, 10**9)
    assert a.labels == b.labels and np.array_equal(a.values, b.values)
