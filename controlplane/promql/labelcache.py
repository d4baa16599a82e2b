"""Memo of label sets derived from label sets (group keys, match signatures, names removed).

Rules evaluate the same expressions over the same series every interval, and a store hands
out the same label tuples each time, so results are keyed by the tuple's identity (the entry
keeps the tuple alive, so an id cannot be reused while cached). Derived label sets are
interned: equal results are the same object, so grouping can compare ids with numpy instead
of hashing tuples in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import numpy.typing as npt

from controlplane.model.series import Labels

I64 = npt.NDArray[np.int64]


class LabelCache:
    def __init__(self, limit: int = 300_000) -> None:
        self._tables: dict[Hashable, dict[int, tuple[Labels, Any]]] = {}
        self._interned: dict[Labels, Labels] = {}
        self._size = 0
        self._limit = limit

    def derive(
        self, spec: Hashable, labels: list[Labels], fn: Callable[[Labels], Labels]
    ) -> list[Labels]:
        """fn(lb) for every label set, interned."""
        intern = self._interned.setdefault

        def make(lb: Labels) -> Labels:
            value = fn(lb)
            return intern(value, value)

        return self.values(spec, labels, make)

    def values(
        self, spec: Hashable, labels: list[Labels], fn: Callable[[Labels], Any]
    ) -> list[Any]:
        table = self._tables.get(spec)
        if table is None:
            table = self._tables[spec] = {}
        get = table.get
        out = []
        for lb in labels:
            hit = get(id(lb))
            if hit is None or hit[0] is not lb:
                hit = table[id(lb)] = (lb, fn(lb))
                self._size += 1
            out.append(hit[1])
        if self._size > self._limit:
            self._tables.clear()
            self._interned.clear()
            self._size = 0
        return out


def factorize(items: list[Any]) -> tuple[I64, list[Any]]:
    """Codes (in order of first appearance) of interned objects, and the distinct objects."""
    if not items:
        return np.empty(0, dtype=np.int64), []
    ids = np.fromiter(map(id, items), dtype=np.int64, count=len(items))
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return position[inverse.ravel()], [items[i] for i in first[order].tolist()]
