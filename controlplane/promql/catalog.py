"""What the metadata endpoints (/api/v1/series, labels, label values) read.

`Catalog` is answered by the embedded store through `StoreCatalog`, and by a remote
Prometheus-compatible API through `controlplane.remote.prometheus.RemotePrometheus`. A selector
list is a union: a series is in the answer when it matches all matchers of any one set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from controlplane.model.series import METRIC_NAME, Labels, Matcher, MatchOp, SeriesSource

Selectors = Sequence[Sequence[Matcher]]

# Prometheus's own bounds for "no start/end given" on the metadata endpoints
MIN_TIME_MS = -9_223_309_901_257_974
MAX_TIME_MS = 9_223_309_901_257_974

# what "every series" means to a store that takes matchers: a name that is never empty
_ANY_SERIES: Sequence[Matcher] = (Matcher(name=METRIC_NAME, op=MatchOp.RE, value=".+"),)


class Catalog(Protocol):
    def series(
        self, selectors: Selectors, start_ms: int, end_ms: int, limit: int = 0
    ) -> list[Labels]: ...

    def label_names(self, selectors: Selectors, start_ms: int, end_ms: int) -> list[str]: ...

    def label_values(
        self, name: str, selectors: Selectors, start_ms: int, end_ms: int
    ) -> list[str]: ...


class StoreCatalog:
    """A Catalog over any SeriesSource (the embedded store, a test fixture)."""

    def __init__(self, source: SeriesSource) -> None:
        self._source = source

    def series(
        self, selectors: Selectors, start_ms: int, end_ms: int, limit: int = 0
    ) -> list[Labels]:
        found: set[Labels] = set()
        for matchers in selectors:
            found.update(s.labels for s in self._source.select(matchers, start_ms, end_ms))
        ordered = sorted(found)
        return ordered[:limit] if limit else ordered

    def label_names(self, selectors: Selectors, start_ms: int, end_ms: int) -> list[str]:
        names: set[str] = set()
        for matchers in selectors or [_ANY_SERIES]:
            names.update(self._source.label_names(matchers, start_ms, end_ms))
        return sorted(names)

    def label_values(
        self, name: str, selectors: Selectors, start_ms: int, end_ms: int
    ) -> list[str]:
        values: set[str] = set()
        for matchers in selectors or [_ANY_SERIES]:
            values.update(self._source.label_values(name, matchers, start_ms, end_ms))
        return sorted(values)
