"""Block encodings round-trip bit for bit, and pick the compact encodings they should."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.model.series import STALE_NAN
from controlplane.tsdb.chunks import KIND_CONST, KIND_RAW, Block, encode_block, encode_rows

_specials = st.sampled_from(
    [
        STALE_NAN,
        float("nan"),
        -0.0,
        0.0,
        float("inf"),
        -float("inf"),
        2.0**53,
        2.0**53 + 2,
        -(2.0**62),
        1e300,
        5e-324,
        0.1,
        0.3,
    ]
)
_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**60), 2**60).map(float),
    st.integers(-1000, 1000).map(lambda i: i / 100),
    _specials,
)


@st.composite
def _rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = draw(st.integers(1, 5))
    n = draw(st.integers(1, 40))
    style = draw(st.sampled_from(["regular", "jitter", "random", "shared"]))
    start = draw(st.integers(-(2**50), 2**50))
    step = draw(st.integers(1, 100_000))
    t = np.empty((r, n), np.int64)
    for i in range(r):
        if style in ("regular", "shared"):
            gaps = np.full(n, step)
        elif style == "jitter":
            gaps = step + np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)))
        else:
            gaps = np.array(draw(st.lists(st.integers(1, 2**40), min_size=n, max_size=n)))
        t[i] = start + np.cumsum(gaps) + (0 if style == "shared" else i)
    kind = draw(st.sampled_from(["counter", "const", "decimal", "any"]))
    v = np.empty((r, n))
    for i in range(r):
        if kind == "counter":
            v[i] = np.cumsum(draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n)))
        elif kind == "const":
            v[i] = draw(_value)
        elif kind == "decimal":
            v[i] = (
                np.array(draw(st.lists(st.integers(-(10**7), 10**7), min_size=n, max_size=n)))
                / 1000
            )
        else:
            v[i] = draw(st.lists(_value, min_size=n, max_size=n))
        for j in draw(st.lists(st.integers(0, n - 1), max_size=3)):
            v[i, j] = draw(_specials)
    refs = np.array(sorted(draw(st.sets(st.integers(0, 10**6), min_size=r, max_size=r))), np.int64)
    return refs, t, v


def _decode_all(block: Block) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(len(block.refs))
    piece = block.decode(rows, -(2**62), 2**62)
    assert piece is not None
    if piece.counts is None:
        return np.broadcast_to(piece.t, piece.v.shape), piece.v
    n = block.n
    return piece.t.reshape(-1, n), piece.v.reshape(-1, n)


@settings(max_examples=200, deadline=None)
@given(_rows())
def test_round_trip_is_exact(rows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    refs, t, v = rows
    block = encode_block(refs, t, v)
    t2, v2 = _decode_all(block)
    assert np.array_equal(t2, t)
    assert np.array_equal(v2.view(np.uint64), v.view(np.uint64))
    restored = Block.from_arrays(block.to_arrays())
    t3, v3 = _decode_all(restored)
    assert np.array_equal(t3, t)
    assert np.array_equal(v3.view(np.uint64), v.view(np.uint64))


@settings(max_examples=80, deadline=None)
@given(_rows(), st.data())
def test_subsets_and_time_ranges(
    rows: tuple[np.ndarray, np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    refs, t, v = rows
    block = encode_block(refs, t, v)
    picked = np.array(sorted(data.draw(st.sets(st.integers(0, len(refs) - 1), min_size=1))))
    lo = data.draw(st.sampled_from(t.ravel().tolist())) - data.draw(st.integers(0, 2))
    hi = lo + data.draw(st.integers(0, int(t.max() - t.min()) + 2))
    piece = block.decode(picked, lo, hi)
    expected = [
        (t[i][(t[i] >= lo) & (t[i] <= hi)], v[i][(t[i] >= lo) & (t[i] <= hi)]) for i in picked
    ]
    if piece is None:
        assert all(len(e[0]) == 0 for e in expected)
        return
    counts = piece.counts if piece.counts is not None else np.full(len(picked), len(piece.t))
    flat_t = piece.t if piece.counts is not None else np.tile(piece.t, len(picked))
    flat_v = piece.v.ravel()
    assert counts.tolist() == [len(e[0]) for e in expected]
    assert np.array_equal(flat_t, np.concatenate([e[0] for e in expected]))
    want_v = np.concatenate([e[1] for e in expected])
    assert np.array_equal(flat_v.view(np.uint64), want_v.view(np.uint64))


def test_encodings_chosen_for_typical_series() -> None:
    n = 120
    t = np.tile(1_700_000_000_000 + 5000 * np.arange(n, dtype=np.int64), (5, 1))
    counter = np.cumsum(np.arange(n) % 7).astype(float)
    stale_counter = counter.copy()
    stale_counter[50] = STALE_NAN
    v = np.stack(
        [
            counter,
            np.full(n, 3.5),
            np.arange(n) * 0.25,
            np.random.default_rng(1).random(n),
            stale_counter,
        ]
    )
    block = encode_block(np.arange(5), t, v)
    assert block.t_resid.shape == (1, 0)  # one regular timestamp row shared by all rows
    assert block.v_kind.tolist() == [1, KIND_CONST, 1, KIND_RAW, 1]  # int8, const, int8 (x100), raw
    assert len(block.exc_row) == 1  # the staleness marker
    assert block.nbytes < 5 * n * 16 / 4


def test_jittered_timestamps_cost_a_byte() -> None:
    n = 120
    base = 1_700_000_000_000 + 5000 * np.arange(n, dtype=np.int64)
    t = np.stack([base + np.random.default_rng(i).integers(-20, 20, n) for i in range(3)])
    block = encode_block(np.arange(3), t, np.ones((3, n)))
    assert block.t_resid.dtype == np.int8


@pytest.mark.parametrize("counts", [[3, 3, 1], [5, 2, 5, 2]])
def test_encode_rows_splits_by_length(counts: list[int]) -> None:
    r, width = len(counts), max(counts)
    t = np.tile(np.arange(width, dtype=np.int64) * 10, (r, 1))
    v = np.arange(r * width, dtype=float).reshape(r, width)
    blocks = encode_rows(np.arange(r), t, v, np.array(counts))
    assert sorted(b.n for b in blocks) == sorted(set(counts))
    for b in blocks:
        _, vals = _decode_all(b)
        for ref, row in zip(b.refs, vals, strict=True):
            assert np.array_equal(row, v[ref, : b.n])
