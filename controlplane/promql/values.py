"""Values flowing through an evaluation, each covering every step of the query at once.

A `Vector` is an instant vector over T evaluation steps: one row per series, a (n, T) value
matrix and a (n, T) presence mask, so that functions, operators and aggregations work on whole
columns with numpy instead of step by step. Instant queries are simply T == 1.

Names are removed late, as Prometheus does with delayed name removal: operations that drop
`__name__` only set `drop_name` on the row; `finish` removes the names at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from controlplane.errors import EvalError
from controlplane.model.series import METRIC_NAME, Labels
from controlplane.promql.labelcache import LabelCache, factorize

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"


@dataclass(frozen=True, kw_only=True)
class Steps:
    """The evaluation grid: start, start+step, ..., end (inclusive)."""

    start_ms: int
    end_ms: int
    step_ms: int
    times: I64 = field(repr=False)

    @classmethod
    def grid(cls, start_ms: int, end_ms: int, step_ms: int) -> Steps:
        count = (end_ms - start_ms) // step_ms + 1 if step_ms > 0 else 1
        times = start_ms + step_ms * np.arange(count, dtype=np.int64)
        return cls(start_ms=start_ms, end_ms=end_ms, step_ms=step_ms, times=times)

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True, kw_only=True)
class Vector:
    labels: list[Labels]
    values: F64
    present: Mask
    drop_name: Mask
    # Timestamps of the samples a selector picked (for timestamp()); None elsewhere.
    sample_ts: I64 | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def empty(cls, steps: int) -> Vector:
        return cls(
            labels=[],
            values=np.empty((0, steps)),
            present=np.empty((0, steps), dtype=bool),
            drop_name=np.empty(0, dtype=bool),
        )

    def take(self, rows: npt.ArrayLike) -> Vector:
        idx = np.asarray(rows, dtype=np.int64)
        return Vector(
            labels=[self.labels[i] for i in idx.tolist()],
            values=self.values[idx],
            present=self.present[idx],
            drop_name=self.drop_name[idx],
            sample_ts=None if self.sample_ts is None else self.sample_ts[idx],
        )

    def nonempty(self) -> Vector:
        """Rows that have a value at some step."""
        keep = self.present.any(axis=1)
        return self if keep.all() else self.take(np.flatnonzero(keep))


@dataclass(frozen=True, kw_only=True)
class Scalar:
    values: F64


@dataclass(frozen=True, kw_only=True)
class String:
    text: str


@dataclass(frozen=True, kw_only=True)
class RangeVector:
    """Samples of many series (CSR, no staleness markers) and, per step, a window on them.

    Step j sees the samples with ends[j] - range_ms < t <= ends[j].
    """

    labels: list[Labels]
    timestamps: I64
    values: F64
    offsets: I64
    drop_name: Mask
    ends: I64
    range_ms: int

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, start: int, stop: int) -> RangeVector:
        """Series start..stop-1 with their samples (views, not copies)."""
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        return RangeVector(
            labels=self.labels[start:stop],
            timestamps=self.timestamps[lo:hi],
            values=self.values[lo:hi],
            offsets=self.offsets[start : stop + 1] - lo,
            drop_name=self.drop_name[start:stop],
            ends=self.ends,
            range_ms=self.range_ms,
        )


Value = Vector | Scalar | String | RangeVector


def without_name(labels: Labels) -> Labels:
    if labels and labels[0][0] == METRIC_NAME:
        return labels[1:]
    return tuple(p for p in labels if p[0] != METRIC_NAME)


def merge_same_labels(vec: Vector, cache: LabelCache, message: str = DUPLICATE_LABELSET) -> Vector:
    """Rows with identical labels become one row; overlapping at a step is an error."""
    codes, distinct = factorize(cache.derive("same", vec.labels, _same))
    if len(distinct) == len(vec):
        return vec
    counts = np.zeros((len(distinct), vec.present.shape[1]), dtype=np.int64)
    np.add.at(counts, codes, vec.present)
    if (counts > 1).any():
        raise EvalError(message)
    values = np.zeros(counts.shape)
    present = counts > 0
    rows, cols = np.nonzero(vec.present)
    values[codes[rows], cols] = vec.values[rows, cols]
    drop = np.zeros(len(distinct), dtype=bool)
    np.logical_or.at(drop, codes, vec.drop_name)
    return Vector(labels=distinct, values=values, present=present, drop_name=drop)


def _same(labels: Labels) -> Labels:
    return labels


def finish(vec: Vector, cache: LabelCache) -> Vector:
    """Apply the delayed name removal and insist on unique label sets."""
    vec = vec.nonempty()
    if vec.drop_name.any():
        stripped = cache.derive("no-name", vec.labels, without_name)
        labels = [
            s if drop else lb
            for lb, s, drop in zip(vec.labels, stripped, vec.drop_name.tolist(), strict=True)
        ]
        vec = Vector(
            labels=labels,
            values=vec.values,
            present=vec.present,
            drop_name=np.zeros(len(labels), dtype=bool),
        )
    return merge_same_labels(vec, cache)
