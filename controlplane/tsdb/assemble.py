"""Assemble decoded samples from blocks and the head into one columnar SeriesBatch.

Each source (a block, the head) yields a Piece for some of the selected series; a series' samples
are the concatenation of its pieces, oldest source first. Writing them through a padded
(series x samples) matrix moves whole row slices instead of single samples, which matters when
the engine reads 50,000 series at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from controlplane.model.series import Labels, SeriesBatch
from controlplane.tsdb.chunks import F64, I64, Piece, segments


def assemble(
    refs: I64, order: I64, pieces: list[tuple[I64, Piece]], labels: Sequence[Labels | None]
) -> SeriesBatch:
    """One SeriesBatch from decoded pieces. `refs`: the selected series; `order`: positions in
    refs in label order; pieces: (positions in refs, samples), oldest source first, so each
    series' samples come out in time order; `labels`: label sets by ref. Series without
    samples are left out."""
    totals = np.zeros(len(refs), np.int64)
    for pos, p in pieces:
        totals[pos] += p.counts if p.counts is not None else p.v.shape[1]
    ordered = order[totals[order] > 0]
    slot = np.zeros(len(refs), np.int64)
    slot[ordered] = np.arange(len(ordered))
    offsets = np.zeros(len(ordered) + 1, np.int64)
    np.cumsum(totals[ordered], out=offsets[1:])
    # rows without samples have no slot: drop them from the (head's) ragged pieces
    pieces = [
        (pos, p)
        if p.counts is None or p.counts.all()
        else (pos[p.counts > 0], Piece(t=p.t, v=p.v, counts=p.counts[p.counts > 0]))
        for pos, p in pieces
    ]
    width = int(totals.max()) if len(ordered) else 0
    if len(ordered) * width <= 2 * int(offsets[-1]) + 4096:
        out_t, out_v = _fill_padded(pieces, slot, totals[ordered], width)
    else:
        out_t, out_v = _fill_flat(pieces, slot, offsets)
    return SeriesBatch(
        labels=[labels[r] or () for r in refs[ordered].tolist()],
        timestamps=out_t,
        values=out_v,
        offsets=offsets,
    )


def _fill_padded(
    pieces: list[tuple[I64, Piece]], slot: I64, totals: I64, width: int
) -> tuple[I64, F64]:
    """CSR arrays built through a (series, width) matrix: each piece lands as whole row
    slices, far faster than scattering single samples; then compacted unless all rows are
    full."""
    out_t = np.empty((len(totals), width), np.int64)
    out_v = np.empty((len(totals), width), np.float64)
    written = np.zeros(len(totals), np.int64)
    for pos, p in pieces:
        rows = slot[pos]
        col = written[rows]
        if p.counts is None:
            # broadcasting a 1-D source inside fancy assignment is ~25x slower: expand first
            t, v = np.broadcast_to(p.t, p.v.shape), p.v
            counts = np.full(len(rows), p.v.shape[1], np.int64)
        elif not p.counts.any():
            continue
        elif (p.counts == p.counts[0]).all():
            m = int(p.counts[0])
            t, v, counts = p.t.reshape(-1, m), p.v.reshape(-1, m), p.counts
        else:
            dest = segments(rows * width + col, p.counts)
            out_t.reshape(-1)[dest], out_v.reshape(-1)[dest] = p.t, p.v
            written[rows] += p.counts
            continue
        if len(rows) and (col == col[0]).all():
            c = int(col[0])
            out_t[rows, c : c + v.shape[1]] = t
            out_v[rows, c : c + v.shape[1]] = v
        else:
            dest = (rows * width + col)[:, None] + np.arange(v.shape[1])
            out_t.reshape(-1)[dest], out_v.reshape(-1)[dest] = t, v
        written[rows] += counts
    if (totals == width).all():
        return out_t.reshape(-1), out_v.reshape(-1)
    full = np.arange(width)[None, :] < totals[:, None]
    return out_t[full], out_v[full]


def _fill_flat(pieces: list[tuple[I64, Piece]], slot: I64, offsets: I64) -> tuple[I64, F64]:
    out_t = np.empty(int(offsets[-1]), np.int64)
    out_v = np.empty(int(offsets[-1]), np.float64)
    written = np.zeros(len(offsets) - 1, np.int64)
    for pos, p in pieces:
        rows = slot[pos]
        first = offsets[rows] + written[rows]
        if p.counts is None:
            dest = first[:, None] + np.arange(p.v.shape[1])
            out_t[dest], out_v[dest] = p.t, p.v
            written[rows] += p.v.shape[1]
        else:
            dest = segments(first, p.counts)
            out_t[dest], out_v[dest] = p.t, p.v
            written[rows] += p.counts
    return out_t, out_v
