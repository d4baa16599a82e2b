"""The data model shared by the store, the PromQL engine and everything that reads series.

Times are int64 milliseconds since the epoch (UTC), as in Prometheus; values are float64.
A staleness marker is Prometheus's special NaN (bit pattern 0x7ff0000000000002): a NaN that
`is_stale_marker` recognises, distinct from an ordinary NaN sample value.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from controlplane.model.regex import Regex, anchored

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
METRIC_NAME = "__name__"

Labels = tuple[tuple[str, str], ...]
"""A label set: (name, value) pairs sorted by name, no empty values. Hashable, cheap to compare."""


def labels_from(mapping: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return tuple(sorted((k, v) for k, v in items if v != ""))


def is_stale_marker(value: float) -> bool:
    return value != value and struct.pack("<d", value) == struct.pack("<Q", STALE_NAN_BITS)


def stale_mask(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    return values.view(np.uint64) == np.uint64(STALE_NAN_BITS)


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, kw_only=True)
class Matcher:
    name: str
    op: MatchOp
    value: str

    def compiled(self) -> Regex | None:
        """The regex of =~ and !~ (RE2, fully anchored); RegexError if it is not one."""
        if self.op in (MatchOp.RE, MatchOp.NRE):
            return anchored(self.value)
        return None

    def matches(self, value: str) -> bool:
        if self.op is MatchOp.EQ:
            return value == self.value
        if self.op is MatchOp.NE:
            return value != self.value
        pattern = self.compiled()
        assert pattern is not None
        hit = pattern.matches(value)
        return hit if self.op is MatchOp.RE else not hit


@dataclass(frozen=True, kw_only=True)
class Series:
    """Samples of one series in a time range, ascending by time, staleness markers included."""

    labels: Labels
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class SeriesBatch:
    """Many series in one columnar block (CSR layout), so evaluation can be vectorised.

    Series i owns timestamps[offsets[i]:offsets[i+1]] and the same slice of values;
    len(offsets) == len(labels) + 1.
    """

    labels: list[Labels]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.labels)

    def series(self, i: int) -> Series:
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return Series(
            labels=self.labels[i], timestamps=self.timestamps[lo:hi], values=self.values[lo:hi]
        )

    @classmethod
    def from_series(cls, items: Sequence[Series]) -> SeriesBatch:
        sizes = np.fromiter((len(s.timestamps) for s in items), dtype=np.int64, count=len(items))
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        empty_t, empty_v = np.empty(0, np.int64), np.empty(0, np.float64)
        return cls(
            labels=[s.labels for s in items],
            timestamps=np.concatenate([s.timestamps for s in items]) if items else empty_t,
            values=np.concatenate([s.values for s in items]) if items else empty_v,
            offsets=offsets,
        )


class SeriesSource(Protocol):
    """What the PromQL engine reads. The embedded store implements it; so can a test fixture.

    `select` returns every series matching all matchers that has samples in
    [start_ms, end_ms] (both inclusive), with only those samples, ordered by labels;
    `select_batch` returns the same in one columnar block (the fast path for evaluation).
    """

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]: ...

    def select_batch(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> SeriesBatch: ...

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]: ...

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]: ...
