"""The series registry and its label index: label name -> value -> series refs.

A series ref is a small int, the series' row in the store's columnar arrays. Refs of deleted
series are reused, but only after one more `release()` round (quarantine), so a caller that
cached a ref and raced a deletion cannot write into another series before it notices the
store's `generation` changed.

Matchers resolve with Prometheus semantics: a matcher that matches the empty string also
matches series that do not have the label (`{a=""}` selects series without `a`; `{a!="x"}`
selects series without `a` too), so every matcher is evaluated as a boolean mask over refs.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from controlplane.errors import StoreError
from controlplane.model import deadline
from controlplane.model.series import Labels, Matcher, MatchOp

Refs = npt.NDArray[np.int64]
_EMPTY = np.empty(0, np.int64)
_RANK_GAP = 1 << 20


class LabelIndex:
    """Registry of label sets with postings. Not thread-safe: the store holds the lock."""

    def __init__(self) -> None:
        self.labels: list[Labels | None] = []  # by ref; None for a free ref
        self._by_labels: dict[Labels, int] = {}
        self._postings: dict[str, dict[str, list[int]]] = {}
        self._arrays: dict[tuple[str, str | None], Refs] = {}  # cached postings as arrays
        self._free: list[int] = []
        self._quarantine: list[int] = []
        self._live: npt.NDArray[np.bool_] = np.zeros(0, np.bool_)
        # series order (by label set) as sortable int ranks, kept up to date lazily
        self._sorted: list[Labels] = []
        self._rank: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._unranked: set[int] = set()
        self._removed = False

    def __len__(self) -> int:
        return len(self._by_labels)

    @property
    def capacity(self) -> int:
        return len(self.labels)

    def ref(self, labels: Labels) -> int | None:
        return self._by_labels.get(labels)

    def add(self, labels: Labels) -> tuple[int, bool]:
        """(ref, created) of a label set (sorted name/value pairs, no empty value)."""
        ref = self._by_labels.get(labels)
        if ref is not None:
            return ref, False
        if not labels:
            raise StoreError(f"a series needs at least one label, got {labels!r}")
        ref = heapq.heappop(self._free) if self._free else len(self.labels)
        self._insert(ref, labels)
        return ref, True

    def add_with_ref(self, ref: int, labels: Labels) -> None:
        """Register `labels` under a given ref (restoring a checkpoint or replaying a log)."""
        if ref < len(self.labels) and self.labels[ref] is not None:
            raise StoreError(f"series ref {ref!r} is already taken by {self.labels[ref]!r}")
        for pool in (self._free, self._quarantine):
            if ref in pool:
                pool.remove(ref)
                heapq.heapify(pool)
        self._insert(ref, labels)

    def _insert(self, ref: int, labels: Labels) -> None:
        old = len(self.labels)
        if ref >= old:
            self.labels.extend([None] * (ref + 1 - old))
            for gap in range(old, ref):
                heapq.heappush(self._free, gap)
        if ref >= len(self._live):
            grown = np.zeros(max(ref + 1, 2 * len(self._live), 1024), np.bool_)
            grown[: len(self._live)] = self._live
            self._live = grown
        self.labels[ref] = labels
        self._by_labels[labels] = ref
        self._live[ref] = True
        for name, value in labels:
            bisect.insort(self._postings.setdefault(name, {}).setdefault(value, []), ref)
            self._arrays.pop((name, value), None)
            self._arrays.pop((name, None), None)
        self._unranked.add(ref)

    def remove(self, refs: Iterable[int]) -> None:
        """Delete series; their refs become reusable after the next `release()`."""
        doomed: dict[tuple[str, str], set[int]] = {}
        for ref in refs:
            labels = self.labels[ref]
            if labels is None:
                continue
            del self._by_labels[labels]
            self.labels[ref] = None
            self._live[ref] = False
            self._quarantine.append(ref)
            for pair in labels:
                doomed.setdefault(pair, set()).add(ref)
        for (name, value), gone in doomed.items():
            values = self._postings[name]
            kept = [r for r in values[value] if r not in gone]
            if kept:
                values[value] = kept
            else:
                del values[value]
                if not values:
                    del self._postings[name]
            self._arrays.pop((name, value), None)
            self._arrays.pop((name, None), None)
        if doomed:
            self._removed = True

    def release(self) -> None:
        """Make refs removed before the previous release reusable."""
        for ref in self._quarantine:
            heapq.heappush(self._free, ref)
        self._quarantine = []

    def free_refs(self) -> tuple[list[int], list[int]]:
        return sorted(self._free), list(self._quarantine)

    def restore_free(self, free: Sequence[int], quarantine: Sequence[int]) -> None:
        self._free = [r for r in free if r < len(self.labels) and self.labels[r] is None]
        heapq.heapify(self._free)
        self._quarantine = list(quarantine)

    def is_live(self, refs: Refs) -> npt.NDArray[np.bool_]:
        return self._live[refs]

    def live_refs(self) -> Refs:
        return np.flatnonzero(self._live[: len(self.labels)]).astype(np.int64)

    def postings(self, name: str, value: str | None = None) -> Refs:
        """Refs with label `name` equal to `value` (any value when None), ascending."""
        key = (name, value)
        arr = self._arrays.get(key)
        if arr is None:
            values = self._postings.get(name, {})
            if value is not None:
                arr = np.array(values.get(value, ()), dtype=np.int64)
            elif values:
                arr = np.sort(np.concatenate([np.array(v, np.int64) for v in values.values()]))
            else:
                arr = _EMPTY
            self._arrays[key] = arr
        return arr

    def values(self, name: str) -> list[str]:
        return sorted(self._postings.get(name, {}))

    def names(self) -> list[str]:
        return sorted(self._postings)

    def match(self, matchers: Sequence[Matcher]) -> Refs:
        """Refs of the series matching every matcher, ascending."""
        n = len(self.labels)
        mask = self._live[:n].copy()
        for m in matchers:
            if not mask.any():
                break
            hit = self._positive(m, n)
            mask &= ~hit if m.op in (MatchOp.NE, MatchOp.NRE) else hit
        return np.flatnonzero(mask).astype(np.int64)

    def _positive(self, m: Matcher, n: int) -> npt.NDArray[np.bool_]:
        """Mask of the series matching `m` with its op made positive (!= as =, !~ as =~)."""
        hit = np.zeros(n, np.bool_)
        if m.op in (MatchOp.EQ, MatchOp.NE):
            if m.value == "":
                hit[:] = True
                hit[self.postings(m.name)] = False
            else:
                hit[self.postings(m.name, m.value)] = True
            return hit
        pattern = m.compiled()
        assert pattern is not None
        for i, value in enumerate(self._postings.get(m.name, {})):
            if i % 4096 == 4095:
                deadline.check()  # a label with a million values
            if pattern.matches(value):
                hit[self.postings(m.name, value)] = True
        if pattern.matches(""):
            without = np.ones(n, np.bool_)
            without[self.postings(m.name)] = False
            hit |= without
        return hit

    def names_of(self, refs: Refs) -> list[str]:
        mask = self._mask(refs)
        return [name for name in self.names() if mask[self.postings(name)].any()]

    def values_of(self, name: str, refs: Refs) -> list[str]:
        mask = self._mask(refs)
        return [v for v in self.values(name) if mask[self.postings(name, v)].any()]

    def _mask(self, refs: Refs) -> npt.NDArray[np.bool_]:
        mask = np.zeros(len(self.labels), np.bool_)
        mask[refs] = True
        return mask

    def order(self, refs: Refs) -> Refs:
        """`refs` sorted by their label sets (Prometheus's series order)."""
        self._update_ranks()
        return refs[np.argsort(self._rank[refs], kind="stable")]

    def _update_ranks(self) -> None:
        """Ranks with gaps: a few new series are slotted in between their neighbours (no full
        sort per new series under churn); many at once, or a full gap, renumber everything."""
        if len(self._rank) < len(self.labels):
            grown = np.zeros(max(len(self.labels), 2 * len(self._rank)), np.int64)
            grown[: len(self._rank)] = self._rank
            self._rank = grown
        if self._removed:
            self._sorted = [labels for labels in self._sorted if labels in self._by_labels]
            self._removed = False
            self._renumber()
        new = [r for r in self._unranked if self.labels[r] is not None]
        self._unranked = set()
        if 8 * len(new) > len(self._sorted):
            self._sorted.extend(self.labels[r] for r in new)  # type: ignore[misc]
            self._sorted.sort()
            self._renumber()
            return
        for ref in new:
            labels = self.labels[ref]
            assert labels is not None
            i = bisect.bisect_left(self._sorted, labels)
            lo = self._rank[self._by_labels[self._sorted[i - 1]]] if i else -_RANK_GAP
            hi = (
                self._rank[self._by_labels[self._sorted[i]]]
                if i < len(self._sorted)
                else lo + 2 * _RANK_GAP
            )
            self._sorted.insert(i, labels)
            if hi - lo < 2:
                self._renumber()
            else:
                self._rank[ref] = (lo + hi) // 2

    def _renumber(self) -> None:
        refs = np.fromiter((self._by_labels[labels] for labels in self._sorted), np.int64)
        self._rank[refs] = np.arange(len(refs), dtype=np.int64) * _RANK_GAP
