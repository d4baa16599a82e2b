"""An in-memory, immutable SeriesSource: for tests, backtests and benchmarks.

Samples of all series sit in one CSR block sorted by labels; an inverted index (label name ->
value -> series ids) answers matchers without looking at every series.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from controlplane.model.regex import Regex
from controlplane.model.series import Labels, Matcher, MatchOp, Series, SeriesBatch
from controlplane.promql.selectors import Segments
from controlplane.promql.values import I64, Mask


class MemorySource:
    def __init__(self, series: Iterable[Series] = ()) -> None:
        merged: dict[Labels, list[Series]] = defaultdict(list)
        for s in series:
            merged[s.labels].append(s)
        self._labels: list[Labels] = sorted(merged)
        parts = [_merge(merged[lb]) for lb in self._labels]
        sizes = np.fromiter((len(t) for t, _ in parts), dtype=np.int64, count=len(parts))
        self._offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self._offsets[1:])
        self._timestamps = np.concatenate([t for t, _ in parts]) if parts else np.empty(0, np.int64)
        self._values = np.concatenate([v for _, v in parts]) if parts else np.empty(0)
        self._segments = Segments.build(self._timestamps, self._offsets)
        postings: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, lb in enumerate(self._labels):
            for name, value in lb:
                postings[name][value].append(i)
        self._postings = {
            name: {value: np.asarray(ids, dtype=np.int64) for value, ids in values.items()}
            for name, values in postings.items()
        }

    def __len__(self) -> int:
        return len(self._labels)

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        batch = self.select_batch(matchers, start_ms, end_ms)
        return [batch.series(i) for i in range(len(batch))]

    def select_batch(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesBatch:
        ids, lo, hi = self._slices(matchers, start_ms, end_ms)
        sizes = hi - lo
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        idx = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1] - lo, sizes)
        return SeriesBatch(
            labels=[self._labels[i] for i in ids.tolist()],
            timestamps=self._timestamps[idx],
            values=self._values[idx],
            offsets=offsets,
        )

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]:
        ids, _, _ = self._slices(matchers, start_ms, end_ms)
        return sorted({name for i in ids.tolist() for name, _ in self._labels[i]})

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]:
        ids, _, _ = self._slices(matchers, start_ms, end_ms)
        found = {dict(self._labels[i]).get(name, "") for i in ids.tolist()}
        found.discard("")
        return sorted(found)

    def _slices(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> tuple[I64, I64, I64]:
        ids = np.flatnonzero(self._matching(matchers)).astype(np.int64)
        if len(ids) == 0:
            return ids, ids, ids
        bounds = np.asarray([start_ms - 1, end_ms], dtype=np.int64)
        found = self._segments.count_upto(bounds, rows=ids)
        lo, hi = found[:, 0], found[:, 1]
        keep = hi > lo
        return ids[keep], lo[keep], hi[keep]

    def _matching(self, matchers: Sequence[Matcher]) -> Mask:
        mask = np.ones(len(self._labels), dtype=bool)
        for m in matchers:
            mask &= self._matches(m)
        return mask

    def _matches(self, m: Matcher) -> Mask:
        values = self._postings.get(m.name, {})
        out = np.zeros(len(self._labels), dtype=bool)
        if m.op is MatchOp.EQ and m.value:
            ids = values.get(m.value)
            if ids is not None:
                out[ids] = True
            return out
        pattern = m.compiled()
        has = np.zeros(len(self._labels), dtype=bool)
        for value, ids in values.items():
            has[ids] = True
            if _test(m, pattern, value):
                out[ids] = True
        if _test(m, pattern, ""):
            out |= ~has
        return out


def _test(m: Matcher, pattern: Regex | None, value: str) -> bool:
    if m.op is MatchOp.EQ:
        return value == m.value
    if m.op is MatchOp.NE:
        return value != m.value
    assert pattern is not None
    hit = pattern.matches(value)
    return hit if m.op is MatchOp.RE else not hit


def _merge(parts: list[Series]) -> tuple[I64, np.ndarray]:
    if len(parts) == 1:
        s = parts[0]
        return np.asarray(s.timestamps, dtype=np.int64), np.asarray(s.values, dtype=np.float64)
    ts = np.concatenate([p.timestamps for p in parts]).astype(np.int64)
    vals = np.concatenate([p.values for p in parts]).astype(np.float64)
    # Later parts win on equal timestamps, as a later append would.
    order = np.lexsort((np.arange(len(ts)), ts))
    ts, vals = ts[order], vals[order]
    last = np.append(ts[1:] != ts[:-1], True)
    return ts[last], vals[last]
