"""A small in-memory SeriesSource that rules can write back into: promtool's test storage.

Unit tests load their input series, then every evaluation appends recording-rule output and
ALERTS series, which the next query must see. Series are few, so this favours being plainly
right over being fast: per-series sorted arrays, rebuilt lazily after appends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from controlplane.model.series import Labels, Matcher, Series, SeriesBatch


class _Column:
    __slots__ = ("_t", "_tarr", "_v", "_varr")

    def __init__(self) -> None:
        self._t: list[int] = []
        self._v: list[float] = []
        self._tarr: np.ndarray | None = None
        self._varr: np.ndarray | None = None

    def append(self, t_ms: int, value: float) -> bool:
        if self._t and t_ms <= self._t[-1]:
            return False  # out of order or duplicate, as a TSDB refuses it
        self._t.append(t_ms)
        self._v.append(value)
        self._tarr = self._varr = None
        return True

    def window(self, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
        if self._tarr is None or self._varr is None:
            self._tarr = np.asarray(self._t, dtype=np.int64)
            self._varr = np.asarray(self._v, dtype=np.float64)
        lo = int(np.searchsorted(self._tarr, start_ms, side="left"))
        hi = int(np.searchsorted(self._tarr, end_ms, side="right"))
        return self._tarr[lo:hi], self._varr[lo:hi]


class GrowingSource:
    """SeriesSource + rule sink: `append(labels, t_ms, value)` makes the sample readable."""

    def __init__(self, series: Iterable[Series] = ()) -> None:
        self._columns: dict[Labels, _Column] = {}
        for s in series:
            for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True):
                self.append(s.labels, int(t), float(v))

    def append(self, labels: Labels, t_ms: int, value: float) -> bool:
        column = self._columns.get(labels)
        if column is None:
            column = self._columns[labels] = _Column()
        return column.append(t_ms, value)

    def _matching(self, matchers: Sequence[Matcher]) -> list[Labels]:
        out = []
        for labels in sorted(self._columns):
            values = dict(labels)
            if all(m.matches(values.get(m.name, "")) for m in matchers):
                out.append(labels)
        return out

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        out = []
        for labels in self._matching(matchers):
            t, v = self._columns[labels].window(start_ms, end_ms)
            if len(t):
                out.append(Series(labels=labels, timestamps=t, values=v))
        return out

    def select_batch(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesBatch:
        return SeriesBatch.from_series(self.select(matchers, start_ms, end_ms))

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]:
        names = {n for s in self.select(matchers, start_ms, end_ms) for n, _ in s.labels}
        return sorted(names)

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]:
        values = {dict(s.labels).get(name, "") for s in self.select(matchers, start_ms, end_ms)}
        return sorted(v for v in values if v)
