"""Closed chunks, encoded and decoded many series at a time.

When series' head rows fill up (see store.py) they are cut together into immutable `Block`s.
A block is dense: R series (rows) with exactly n samples each, so every step here is a 2-D
numpy operation over all rows at once, never a Python loop per series.

Timestamps: the rows of a block usually come from the same scrapes and so have identical
timestamps; a block keeps a small table of its distinct timestamp rows (typically one) and one
table index per row. A table row is `first + step * i + residual[i]`: a regularly scraped series
needs no residuals; scrape jitter costs one byte a sample (int8); anything else is stored exactly
in the smallest int dtype that fits.

Values: each row takes whichever encoding is smallest and exact bit for bit:
- CONST: one float64 (a gauge that does not move, `up`, info metrics);
- INT8/16/32/64: `round(v * 10**scale)` for a decimal scale in SCALES, as deltas (the first is 0)
  in the smallest int dtype, decoded as `(base + cumsum) / 10**scale`. Counters, bucket counts and
  gauges of counts use scale 0; values written with few decimals use a higher one. The few
  samples that do not fit (a staleness marker, NaN, -0.0, a spike) are kept as exceptions (row,
  column, raw bits) and patched in after decoding;
- RAW: float64 (sums of float observations and other noisy gauges).
The encoder checks every candidate by decoding it, so round trips are exact by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

CHUNK_SAMPLES = 120
SCALES = (0, 1, 2, 3, 6)
INT_DTYPES = (np.int8, np.int16, np.int32, np.int64)  # value kinds 1..4
KIND_CONST, KIND_RAW = 0, 5
_LIMITS = np.array([127, 32767, 2**31 - 1], dtype=np.int64)
_WIDTH = np.array([1, 2, 4, 8])
_POW10 = np.array([10.0**k for k in range(max(SCALES) + 1)])
_EXACT_INT = 2.0**53
_EXCEPTION_COST = 16  # bytes: row (int32), column (int32), bits (uint64)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, kw_only=True, eq=False)
class Piece:
    """Decoded samples of some rows. Dense: `v` 2-D (rows, m) and `t` either 1-D (m: every row
    has the same timestamps) or 2-D like `v`. Ragged: `counts` given, `t` and `v` flat, row
    after row."""

    t: I64
    v: F64
    counts: I64 | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Block:
    """Rows of n samples: row r is series `refs[r]` (ascending)."""

    refs: I64
    t_group: npt.NDArray[np.int32]  # row -> timestamp table row
    t_first: I64  # per table row
    t_step: I64
    t_resid: npt.NDArray[Any]  # (G, n) smallest int dtype, or (G, 0) when all regular
    v_kind: npt.NDArray[np.uint8]
    v_pos: npt.NDArray[np.int32]  # row -> position in the arrays of its kind
    const: F64
    raw: F64  # (K, n)
    ints: tuple[npt.NDArray[Any], ...]  # per int kind: (K, n) deltas
    bases: tuple[I64, ...]
    scales: tuple[npt.NDArray[np.uint8], ...]
    exc_row: npt.NDArray[np.int32]
    exc_col: npt.NDArray[np.int32]
    exc_bits: npt.NDArray[np.uint64]

    @property
    def n(self) -> int:
        return int(self.raw.shape[1])

    @property
    def min_t(self) -> int:
        return int(self.t_first.min())

    @property
    def max_t(self) -> int:
        return int(self.table()[:, -1].max())

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.to_arrays().values())

    def table(self) -> I64:
        """The distinct timestamp rows, decoded: (G, n)."""
        t = self.t_first[:, None] + self.t_step[:, None] * np.arange(self.n, dtype=np.int64)
        if self.t_resid.shape[1]:
            t += self.t_resid
        return t

    def row_bounds(self, rows: I64) -> tuple[I64, I64]:
        table = self.table()
        g = self.t_group[rows]
        return table[g, 0], table[g, -1]

    def rows_of(self, refs: I64) -> tuple[I64, I64]:
        """(rows, i) for the refs present here: row rows[k] holds refs[i[k]]."""
        pos = np.searchsorted(self.refs, refs)
        pos[pos >= len(self.refs)] = 0
        hit = np.flatnonzero(self.refs[pos] == refs)
        return pos[hit].astype(np.int64), hit.astype(np.int64)

    def decode(self, rows: I64, start: int, end: int) -> Piece | None:
        """Samples of `rows` (ascending) within [start, end]; None if there are none."""
        table = self.table()
        groups = self.t_group[rows]
        if len(table) == 1 or (groups == groups[0]).all():
            times = table[groups[0]]
            lo = int(np.searchsorted(times, start, side="left"))
            hi = int(np.searchsorted(times, end, side="right"))
            if lo >= hi:
                return None
            return Piece(t=times[lo:hi], v=self._values(rows, hi)[:, lo:])
        times2d = table[groups]
        inside = (times2d >= start) & (times2d <= end)
        counts = inside.sum(axis=1).astype(np.int64)
        if not counts.any():
            return None
        return Piece(t=times2d[inside], v=self._values(rows, self.n)[inside], counts=counts)

    def _values(self, rows: I64, hi: int) -> F64:
        """Values of `rows`, columns [0, hi)."""
        out = np.empty((len(rows), hi), np.float64)
        kinds, pos = self.v_kind[rows], self.v_pos[rows]
        present = np.unique(kinds).tolist()
        for kind in present:
            sel: Any = slice(None) if len(present) == 1 else kinds == kind
            p = pos[sel]
            if kind == KIND_CONST:
                out[sel] = self.const[p][:, None]
            elif kind == KIND_RAW:
                out[sel] = self.raw[p, :hi]
            else:
                acc = np.cumsum(self.ints[kind - 1][p, :hi], axis=1, dtype=np.int64)
                acc += self.bases[kind - 1][p][:, None]
                vals = acc.astype(np.float64)
                scale = self.scales[kind - 1][p]
                if scale.any():
                    vals /= _POW10[scale][:, None]
                out[sel] = vals
        if len(self.exc_row):
            where = np.full(len(self.refs), -1, np.int64)
            where[rows] = np.arange(len(rows))
            r = where[self.exc_row]
            hit = (r >= 0) & (self.exc_col < hi)
            out[r[hit], self.exc_col[hit]] = self.exc_bits[hit].view(np.float64)
        return out

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        out: dict[str, npt.NDArray[Any]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                out.update({f"{f.name}{i}": a for i, a in enumerate(value)})
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> Block:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("ints", "bases", "scales"):
                kwargs[f.name] = tuple(arrays[f"{f.name}{i}"] for i in range(len(INT_DTYPES)))
            else:
                kwargs[f.name] = arrays[f.name]
        return cls(**kwargs)


def _int_code(maxabs: I64) -> npt.NDArray[np.intp]:
    """1..4: the smallest of int8/16/32/64 holding every value of magnitude <= maxabs."""
    return 1 + (maxabs[:, None] > _LIMITS[None, :]).sum(axis=1)


def _encode_times(t: I64) -> dict[str, Any]:
    n = t.shape[1]
    rows = np.ascontiguousarray(t).view(np.dtype((np.void, 8 * n))).ravel()
    uniq, group = np.unique(rows, return_inverse=True)
    table = uniq.view(np.int64).reshape(len(uniq), n)
    first = table[:, 0].copy()
    step = (table[:, -1] - first) // max(n - 1, 1)
    resid = table - (first[:, None] + step[:, None] * np.arange(n, dtype=np.int64))
    maxabs = int(np.abs(resid).max())
    if maxabs == 0:
        resid = np.zeros((len(table), 0), np.int64)
    else:
        resid = resid.astype(INT_DTYPES[int(_int_code(np.array([maxabs]))[0]) - 1])
    return dict(
        t_group=group.reshape(-1).astype(np.int32), t_first=first, t_step=step, t_resid=resid
    )


def _try_scale(v: F64, scale: int) -> tuple[I64, Bools, I64, npt.NDArray[np.intp], Bools]:
    """Scaled-integer candidate per row: (deltas, exceptions, base, int kind, worth it)."""
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.rint(v * _POW10[scale])
        fits = np.abs(m) <= _EXACT_INT
        ints = np.where(fits, m, 0).astype(np.int64)
        back = ints.astype(np.float64) / _POW10[scale]
    exact = fits & (back.view(np.uint64) == v.view(np.uint64))
    cols = np.arange(v.shape[1])
    first = np.argmax(exact, axis=1)
    # samples that do not fit repeat the previous exact integer, so their deltas are 0
    idx = np.maximum.accumulate(np.where(exact, cols, first[:, None]), axis=1)
    filled = np.take_along_axis(ints, idx, axis=1)
    deltas = np.zeros_like(filled)
    deltas[:, 1:] = filled[:, 1:] - filled[:, :-1]
    kind = _int_code(np.abs(deltas).max(axis=1))
    exc = ~exact
    size = _WIDTH[kind - 1] * v.shape[1] + _EXCEPTION_COST * exc.sum(axis=1)
    worth = exact.any(axis=1) & (size < 8 * v.shape[1])
    return deltas, exc, filled[:, 0], kind, worth


def _encode_values(v: F64) -> dict[str, Any]:
    r, n = v.shape
    bits = v.view(np.uint64)
    kind = np.full(r, KIND_RAW, np.uint8)
    scale = np.zeros(r, np.uint8)
    base = np.zeros(r, np.int64)
    deltas = np.zeros((r, n), np.int64)
    exc = np.zeros((r, n), np.bool_)
    const = (bits == bits[:, :1]).all(axis=1)
    kind[const] = KIND_CONST
    todo = np.flatnonzero(~const)
    for s in SCALES:
        if not len(todo):
            break
        d, e, b, k, worth = _try_scale(v[todo], s)
        done = todo[worth]
        kind[done], scale[done], base[done] = k[worth], s, b[worth]
        deltas[done], exc[done] = d[worth], e[worth]
        todo = todo[~worth]
    pos = np.zeros(r, np.int32)
    for kind_code in range(KIND_RAW + 1):
        sel = kind == kind_code
        pos[sel] = np.arange(int(sel.sum()))
    exc_row, exc_col = np.nonzero(exc)
    return dict(
        v_kind=kind,
        v_pos=pos,
        const=v[const, 0].copy(),
        raw=v[kind == KIND_RAW],
        ints=tuple(deltas[kind == k].astype(dt) for k, dt in enumerate(INT_DTYPES, 1)),
        bases=tuple(base[kind == k] for k in range(1, len(INT_DTYPES) + 1)),
        scales=tuple(scale[kind == k] for k in range(1, len(INT_DTYPES) + 1)),
        exc_row=exc_row.astype(np.int32),
        exc_col=exc_col.astype(np.int32),
        exc_bits=bits[exc_row, exc_col],
    )


def encode_block(refs: I64, t: I64, v: F64) -> Block:
    """Encode rows of equal length: series refs[r] has samples t[r], v[r] (time ascending).

    `refs` must be ascending and n = t.shape[1] >= 1."""
    return Block(refs=np.asarray(refs, np.int64), **_encode_times(t), **_encode_values(v))


def encode_rows(refs: I64, t: I64, v: F64, counts: npt.NDArray[Any]) -> list[Block]:
    """Encode padded rows of varying length (row r uses its first counts[r] columns): one
    block per distinct length, so every block stays dense."""
    blocks = []
    for n in np.unique(counts).tolist():
        if n == 0:
            continue
        sel = np.flatnonzero(counts == n)
        blocks.append(encode_block(refs[sel], t[sel, :n], v[sel, :n]))
    return blocks


def segments(starts: I64, counts: npt.NDArray[Any]) -> I64:
    """Flat indices of the concatenated ranges [starts[i], starts[i] + counts[i])."""
    counts = counts.astype(np.int64, copy=False)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    excl = np.cumsum(counts) - counts
    return np.repeat(starts.astype(np.int64) - excl, counts) + np.arange(total, dtype=np.int64)
