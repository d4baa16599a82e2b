"""What a backtest must read: the series and time ranges rule expressions select, the
series the rules themselves produce, and when only a step-by-step replay is faithful."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import promql_parser as pp

from controlplane.model.series import (
    METRIC_NAME,
    Matcher,
    MatchOp,
    SeriesBatch,
)
from controlplane.promql.parse import duration_ms, parse_query
from controlplane.rules.alerting import ALERTS_FOR_STATE_METRIC, ALERTS_METRIC
from controlplane.rules.model import RecordingRule, RuleGroup

DEFAULT_LOOKBACK_MS = 300_000
_PP_OPS = (
    (pp.MatchOp.Equal, MatchOp.EQ),
    (pp.MatchOp.NotEqual, MatchOp.NE),
    (pp.MatchOp.Re, MatchOp.RE),
    (pp.MatchOp.NotRe, MatchOp.NRE),
)

"""Called with (rule evaluations done, rule evaluations in total)."""


# -- what the rules read -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Read:
    """One selector of a rule: matchers as written (regexes in RE2 syntax), how far before
    and after the evaluation time it reads, and whether it has an @ modifier."""

    matchers: tuple[Matcher, ...]
    back_ms: int
    forward_ms: int
    pinned: bool

    @property
    def name(self) -> str | None:
        return next(
            (m.value for m in self.matchers if m.name == METRIC_NAME and m.op is MatchOp.EQ), None
        )


def reads(expr: str, lookback_ms: int = DEFAULT_LOOKBACK_MS) -> list[Read]:
    return list(_walk(parse_query(expr).root, 0, lookback_ms))


def _walk(node: Any, offset_ms: int, lookback_ms: int) -> Iterable[Read]:
    if isinstance(node, pp.VectorSelector):
        yield from _reads_of(node, offset_ms, lookback_ms)
    elif isinstance(node, pp.MatrixSelector):
        yield from _reads_of(node.vector_selector, offset_ms, duration_ms(node.range))
    elif isinstance(node, pp.SubqueryExpr):
        inner = offset_ms + duration_ms(node.offset) + duration_ms(node.range)
        for read in _walk(node.expr, inner, lookback_ms):
            yield replace(read, pinned=read.pinned or node.at is not None)
    elif isinstance(node, pp.Call):
        for arg in node.args:
            yield from _walk(arg, offset_ms, lookback_ms)
    else:
        for attr in ("expr", "lhs", "rhs", "param"):
            child = getattr(node, attr, None)
            if child is not None and type(child).__module__ == pp.__name__:
                yield from _walk(child, offset_ms, lookback_ms)


def _reads_of(node: Any, offset_ms: int, range_ms: int) -> Iterable[Read]:
    shift = offset_ms + duration_ms(node.offset)
    name = [Matcher(name=METRIC_NAME, op=MatchOp.EQ, value=node.name)] if node.name else []
    for group in node.matchers.or_matchers or [node.matchers.matchers]:
        ours = [
            Matcher(name=m.name, op=next(o for p, o in _PP_OPS if p == m.op), value=m.value)
            for m in group
        ]
        yield Read(
            matchers=tuple(name + ours),
            back_ms=shift + range_ms,
            forward_ms=max(0, -shift),
            pinned=node.at is not None,
        )


def produced_names(groups: Sequence[RuleGroup]) -> frozenset[str]:
    """Metric names the rules write: recording rules' names, ALERTS and ALERTS_FOR_STATE."""
    names = {r.name for g in groups for r in g.rules if isinstance(r, RecordingRule)}
    return frozenset(names | {ALERTS_METRIC, ALERTS_FOR_STATE_METRIC})


def without_produced(batch: SeriesBatch, produced: frozenset[str]) -> tuple[SeriesBatch, int]:
    """The batch without series the rules write themselves; and how many were dropped."""
    keep = [i for i, lb in enumerate(batch.labels) if dict(lb).get(METRIC_NAME) not in produced]
    if len(keep) == len(batch):
        return batch, 0
    return SeriesBatch.from_series([batch.series(i) for i in keep]), len(batch) - len(keep)


def stepwise_reason(groups: Sequence[RuleGroup], lookback_ms: int) -> str | None:
    """Why the vectorised replay would not be equivalent; None when it is."""
    produced = produced_names(groups)
    ready: set[str] = set()
    for group in groups:
        if group.limit:
            return f"group {group.name!r} has a limit"
        for rule in group.rules:
            for read in reads(rule.expr, lookback_ms):
                name = read.name
                if read.pinned or read.forward_ms:
                    return f"rule {rule.name!r} reads at a fixed or future time (@, offset < 0)"
                if name is None and any(
                    all(m.matches(p) for m in read.matchers if m.name == METRIC_NAME)
                    for p in produced
                ):
                    return f"rule {rule.name!r} may read series the rules write"
                if name in (ALERTS_METRIC, ALERTS_FOR_STATE_METRIC):
                    return f"rule {rule.name!r} reads {name}"
                if name in produced and name not in ready:
                    return f"rule {rule.name!r} reads {name!r} before it is written"
            if isinstance(rule, RecordingRule):
                ready.add(rule.name)
    return None
