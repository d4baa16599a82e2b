"""What the SLOs need the store to keep for their whole window: how long that window is, and
which raw metrics their SLIs read (the embedded store's long-term tier keeps those next to the
`slo:*` series, see controlplane/tsdb/history.py).

The raw inputs matter for a true SLO page: the burn rate over 3 days and the events over the
window (`dashboards/queries.events_in_window`) are `rate()`s of the SLI's counters over those
windows, which a day of raw samples cannot answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import promql_parser as pp

from controlplane.model.series import METRIC_NAME
from controlplane.slo.spec import SLO

_CHILDREN = ("expr", "lhs", "rhs", "param", "vector_selector")


def longest_window(slos: Iterable[SLO]) -> timedelta | None:
    return max((slo.window for slo in slos), default=None)


def sli_metric_names(slos: Iterable[SLO]) -> frozenset[str]:
    """Metric names the SLIs select by name. A selector naming its metric by regex
    (`{__name__=~"..."}`) adds nothing: the store's `history_match` can cover it."""
    names: set[str] = set()
    for slo in slos:
        queries = (slo.sli.error_ratio("5m"), slo.sli.total_rate("5m") or "")
        for query in filter(None, queries):
            names.update(_selected_names(pp.parse(query)))
    return frozenset(names)


def _selected_names(node: Any) -> Iterator[str]:
    if isinstance(node, pp.VectorSelector):
        if node.name:
            yield node.name
        for group in [node.matchers.matchers, *node.matchers.or_matchers]:
            for m in group:
                if m.name == METRIC_NAME and m.op == pp.MatchOp.Equal:
                    yield m.value
        return
    for arg in getattr(node, "args", None) or ():
        yield from _selected_names(arg)
    for attr in _CHILDREN:
        child = getattr(node, attr, None)
        if child is not None and type(child).__module__ == pp.__name__:
            yield from _selected_names(child)
