"""Which closed blocks hold which series, and when: so that a read visits only the blocks of
the series it selects (store.py `_pieces`).

Blocks are cut per append (a scrape target's series together, a rule group's together), so a
store of a day holds thousands of them, and a query of two series used to look at every one
of them in Python (its time bounds, then a search for the series in it): tens of milliseconds
per query whatever it selected, growing with everything else the store holds. Here the time
bounds of every block are arrays, and every (series, block) pair is one entry of an array
sorted by series, so the blocks of a query's series are a few searches away.

The index follows the store's block list by identity: blocks appended since the last read are
added (merged into the sorted entries), blocks that left it (retention, a snapshot loaded) are
forgotten, and the entries are rebuilt once most are dead. Serial numbers follow the order
blocks entered the list, so blocks come back oldest first, as reads need them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from controlplane.tsdb.chunks import I64, Block


class BlockIndex:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._serial: dict[int, int] = {}  # id(block) -> serial, for the live blocks
        self._blocks: list[Block | None] = []  # by serial; None once gone
        self._min = np.zeros(0, np.int64)  # by serial
        self._max = np.zeros(0, np.int64)
        self._refs = np.zeros(0, np.int64)  # one entry per (series, block), sorted by ref
        self._owner = np.zeros(0, np.int64)  # the block's serial of each entry
        self._seen: tuple[int, int, int] = (0, 0, 0)  # len, id(first), id(last) when synced
        self._dead = 0  # entries of blocks gone from the list

    def holding(self, blocks: Sequence[Block], refs: I64, start: int, end: int) -> list[Block]:
        """The blocks of `blocks` (the store's list) holding any of `refs` (ascending) with
        samples in [start, end], oldest first."""
        self._sync(blocks)
        lo = np.searchsorted(self._refs, refs, side="left")
        counts = np.searchsorted(self._refs, refs, side="right") - lo
        if not counts.any():
            return []
        firsts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        serials = np.unique(self._owner[np.arange(int(counts.sum())) + firsts])
        serials = serials[(self._max[serials] >= start) & (self._min[serials] <= end)]
        found = [self._blocks[s] for s in serials.tolist()]
        return [b for b in found if b is not None]

    def _sync(self, blocks: Sequence[Block]) -> None:
        seen = (len(blocks), id(blocks[0]), id(blocks[-1])) if blocks else (0, 0, 0)
        if seen == self._seen:
            return
        live = {id(b) for b in blocks}
        for key in [k for k in self._serial if k not in live]:
            serial = self._serial.pop(key)
            gone = self._blocks[serial]
            self._dead += len(gone.refs) if gone is not None else 0
            self._blocks[serial] = None  # not kept alive here, so its id is not reused
        if self._dead * 2 > len(self._refs):
            kept = sorted(self._serial.items(), key=lambda item: item[1])
            survivors = [self._blocks[s] for _key, s in kept]
            self._reset()
            self._add([b for b in survivors if b is not None])
        self._add([b for b in blocks if id(b) not in self._serial])
        self._seen = seen

    def _add(self, new: list[Block]) -> None:
        if not new:
            return
        first = len(self._blocks)
        for i, block in enumerate(new):
            self._serial[id(block)] = first + i
        self._blocks.extend(new)
        self._min = np.concatenate([self._min, [b.min_t for b in new]]).astype(np.int64)
        self._max = np.concatenate([self._max, [b.max_t for b in new]]).astype(np.int64)
        owners = [np.full(len(b.refs), first + i, np.int64) for i, b in enumerate(new)]
        refs = np.concatenate([self._refs, *[b.refs.astype(np.int64) for b in new]])
        owner = np.concatenate([self._owner, *owners])
        # the old entries are one sorted run and the new ones a few more: a merge, not a sort
        order = np.argsort(refs, kind="stable")
        self._refs, self._owner = refs[order], owner[order]
