"""The head: every series' open chunk, as two 2-D arrays (row = series ref).

Appending a whole scrape is a handful of fancy-indexed numpy assignments, whatever the number
of series. A row is cut (handed to chunks.encode_block by the store) as soon as it holds
`width` samples, so a row never overflows. Not thread-safe: the store holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from controlplane.tsdb.chunks import F64, I64, Piece, segments

NO_TIME = np.iinfo(np.int64).min
_MAX_DENSE_GROUPS = 64


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """What an append did: `refs`/`t`/`v` are the samples written; the rest are counts."""

    refs: I64
    t: I64
    v: F64
    out_of_order: int
    duplicates: int
    ignored: int  # same timestamp and same value as the series' last sample: not an error


class Head:
    def __init__(self, width: int) -> None:
        self.width = width
        self.t: npt.NDArray[np.int64] = np.zeros((0, width), np.int64)
        self.v: npt.NDArray[np.float64] = np.zeros((0, width), np.float64)
        self.n: npt.NDArray[np.int32] = np.zeros(0, np.int32)
        self.last_t: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.last_v: npt.NDArray[np.uint64] = np.zeros(0, np.uint64)
        self._mark: npt.NDArray[np.int64] = np.zeros(0, np.int64)

    @property
    def capacity(self) -> int:
        return len(self.n)

    @property
    def nbytes(self) -> int:
        arrays = (self.t, self.v, self.n, self.last_t, self.last_v, self._mark)
        return sum(a.nbytes for a in arrays)

    def ensure(self, size: int) -> None:
        """Make room for refs < size (grows by half again, not doubling: memory matters)."""
        if size <= self.capacity:
            return
        cap = max(size, self.capacity + self.capacity // 2, 1024)
        old = self.capacity
        self.t = _grow(self.t, cap, 0)
        self.v = _grow(self.v, cap, 0)
        self.n = _grow(self.n, cap, 0)
        self.last_t = _grow(self.last_t, cap, NO_TIME)
        self.last_v = _grow(self.last_v, cap, 0)
        self._mark = _grow(self._mark, cap, 0)
        self.last_t[old:] = NO_TIME

    def reset(self, refs: I64) -> None:
        self.n[refs] = 0
        self.last_t[refs] = NO_TIME
        self.last_v[refs] = 0

    def append(self, refs: I64, t: I64, v: F64) -> Accepted:
        """Write one sample per ref; a repeated ref keeps one of its samples (duplicates)."""
        k = len(refs)
        order = np.arange(k, dtype=np.int64)
        # with repeated refs exactly one write per ref survives: that occurrence is kept
        self._mark[refs] = order
        first = self._mark[refs] == order
        bits = v.view(np.uint64)
        last_t = self.last_t[refs]
        newer = t > last_t
        same = (t == last_t) & (bits == self.last_v[refs])
        ok = first & newer
        r, tt, vv = refs[ok], t[ok], v[ok]
        pos = self.n[r]
        self.t[r, pos] = tt
        self.v[r, pos] = vv
        self.n[r] = pos + 1
        self.last_t[r] = tt
        self.last_v[r] = bits[ok]
        ignored = int((first & same).sum())
        return Accepted(
            refs=r,
            t=tt,
            v=vv,
            out_of_order=int((first & ~newer).sum()) - ignored,
            duplicates=k - int(first.sum()),
            ignored=ignored,
        )

    def take(self, refs: I64) -> tuple[I64, F64, npt.NDArray[np.int32]]:
        """The rows' samples (padded 2-D) for cutting, and empty the rows."""
        n = self.n[refs].copy()
        t, v = self.t[refs], self.v[refs]
        self.n[refs] = 0
        return t, v, n

    def first_t(self, refs: I64) -> I64:
        """Oldest head timestamp per ref (NO_TIME where the row is empty)."""
        return np.where(self.n[refs] > 0, self.t[refs, 0], NO_TIME)

    def read(self, refs: I64, start: int, end: int) -> list[tuple[I64, Piece]]:
        """Samples of refs in [start, end] as (positions in refs, piece) pairs.

        Rows whose samples in range sit in the same columns (series scraped together) come
        out as one dense piece, copied as row slices; many distinct column ranges (irregular
        series) fall back to one ragged piece."""
        n = self.n[refs].astype(np.int64)
        lo = self._search(refs, n, start, inclusive=False)
        hi = self._search(refs, n, end, inclusive=True)
        has = np.flatnonzero(hi > lo)
        if not len(has):
            return []
        keys, group = np.unique(lo[has] * (self.width + 1) + hi[has], return_inverse=True)
        if len(keys) > _MAX_DENSE_GROUPS:
            counts = hi[has] - lo[has]
            flat = segments(refs[has] * self.width + lo[has], counts)
            return [(has, Piece(t=self.t.ravel()[flat], v=self.v.ravel()[flat], counts=counts))]
        pieces = []
        for g, key in enumerate(keys.tolist()):
            pos = has[group.reshape(-1) == g]
            first, last = divmod(key, self.width + 1)
            rows = refs[pos]
            pieces.append((pos, Piece(t=self.t[rows, first:last], v=self.v[rows, first:last])))
        return pieces

    def _search(self, refs: I64, n: I64, x: int, *, inclusive: bool) -> I64:
        """Per row, the first index whose time is >= x (> x if inclusive): vectorised bisect."""
        lo = np.zeros(len(refs), np.int64)
        hi = n.copy()
        while True:
            active = lo < hi
            if not active.any():
                return lo
            mid = (lo + hi) // 2
            val = self.t[refs, np.minimum(mid, self.width - 1)]
            right = active & ((val <= x) if inclusive else (val < x))
            lo = np.where(right, mid + 1, lo)
            hi = np.where(active & ~right, mid, hi)


def _grow(a: npt.NDArray[Any], cap: int, fill: int) -> npt.NDArray[Any]:
    out = np.full((cap, *a.shape[1:]), fill, dtype=a.dtype)
    out[: len(a)] = a
    return out
