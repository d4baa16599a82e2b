"""`Engine`: the embedded PromQL querier (`promql.results.Querier`) over a SeriesSource.

Its limits: `parse_limits` (length and depth of the text, checked before parsing),
`max_samples` (samples held at once, intermediate results included), `timeout_s` (checked at
every node and inside long loops), and MAX_POINTS steps per series for range queries and
subqueries alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from controlplane.errors import EvalError, ParseError
from controlplane.model import deadline
from controlplane.model.series import Series, SeriesSource
from controlplane.promql.evaluate import MAX_POINTS, Evaluator
from controlplane.promql.labelcache import LabelCache
from controlplane.promql.limits import ParseLimits
from controlplane.promql.parse import Query, parse_query
from controlplane.promql.results import InstantSample, QueryResult, ResultType
from controlplane.promql.values import RangeVector, Scalar, Steps, String, Value, Vector, finish
from controlplane.promql.windows import Windows

__all__ = ["MAX_POINTS", "Engine"]


class Engine:
    def __init__(
        self,
        source: SeriesSource,
        *,
        lookback_ms: int = 300_000,
        clock: Callable[[], float] = time.monotonic,
        max_samples: int = 50_000_000,
        timeout_s: float = 120.0,
        subquery_step_ms: int = 60_000,
        parse_limits: ParseLimits | None = None,
    ) -> None:
        self.source = source
        self.parse_limits = parse_limits or ParseLimits()
        self.lookback_ms = lookback_ms
        self.clock = clock
        self.max_samples = max_samples
        self.timeout_s = timeout_s
        self.subquery_step_ms = subquery_step_ms
        self._labels = LabelCache()

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        query = parse_query(expr, self.parse_limits)
        steps = Steps.grid(time_ms, time_ms, 0)
        value, warnings = self._evaluate(query, steps)
        if isinstance(value, Vector):
            vec = finish(value, self._labels)
            samples = tuple(
                InstantSample(labels=lb, t_ms=time_ms, value=float(v))
                for lb, v in zip(vec.labels, vec.values[:, 0].tolist(), strict=True)
            )
            return QueryResult(type=ResultType.VECTOR, vector=samples, warnings=warnings)
        if isinstance(value, Scalar):
            sample = InstantSample(labels=(), t_ms=time_ms, value=float(value.values[0]))
            return QueryResult(type=ResultType.SCALAR, scalar=sample, warnings=warnings)
        if isinstance(value, String):
            return QueryResult(
                type=ResultType.STRING, text=value.text, t_ms=time_ms, warnings=warnings
            )
        return QueryResult(
            type=ResultType.MATRIX, matrix=_range_series(value, steps), warnings=warnings
        )

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        if step_ms <= 0:
            raise ParseError(
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer"
            )
        if end_ms < start_ms:
            raise ParseError("end timestamp must not be before start time")
        if (end_ms - start_ms) // step_ms + 1 > MAX_POINTS:
            raise ParseError(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        query = parse_query(expr, self.parse_limits)
        steps = Steps.grid(start_ms, end_ms, step_ms)
        value, warnings = self._evaluate(query, steps)
        if isinstance(value, Scalar):
            value = Vector(
                labels=[()],
                values=value.values[None, :],
                present=np.ones((1, len(steps)), dtype=bool),
                drop_name=np.zeros(1, dtype=bool),
            )
        if not isinstance(value, Vector):
            kind = "string" if isinstance(value, String) else "range vector"
            raise ParseError(
                f'invalid expression type "{kind}" for range query, '
                "must be Scalar or instant Vector"
            )
        vec = finish(value, self._labels)
        order = sorted(range(len(vec)), key=lambda i: vec.labels[i])
        matrix = tuple(
            Series(
                labels=vec.labels[i],
                timestamps=steps.times[vec.present[i]],
                values=vec.values[i][vec.present[i]],
            )
            for i in order
        )
        return QueryResult(type=ResultType.MATRIX, matrix=matrix, warnings=warnings)

    def _evaluate(self, query: Query, steps: Steps) -> tuple[Value, tuple[str, ...]]:
        limit = deadline.Deadline(at=self.clock() + self.timeout_s, clock=self.clock)
        evaluator = Evaluator(
            source=self.source,
            query=query,
            frame=steps,
            lookback_ms=self.lookback_ms,
            subquery_step_ms=self.subquery_step_ms,
            max_samples=self.max_samples,
            clock=self.clock,
            labels=self._labels,
            deadline=limit.at,
        )
        # NaN and Inf are ordinary PromQL values: numpy must not warn about them.
        try:
            with np.errstate(all="ignore"), deadline.bounded(limit):
                value = evaluator.eval(query.root, steps)
        except RecursionError:
            # parse limits keep queries well inside the stack; this is the last line
            raise EvalError(f"query too deeply nested to evaluate: {query.text[:200]!r}") from None
        return value, tuple(evaluator.warnings)


def _range_series(rv: RangeVector, steps: Steps) -> tuple[Series, ...]:
    """The samples an instant query's range vector holds at its single step."""
    win = Windows.of(rv, steps)
    out = []
    for i in sorted(range(len(rv)), key=lambda i: rv.labels[i]):
        lo, hi = int(win.lo[i]), int(win.hi[i])
        if hi > lo:
            lb = rv.labels[i]
            if rv.drop_name[i]:
                lb = tuple(p for p in lb if p[0] != "__name__")
            out.append(Series(labels=lb, timestamps=rv.timestamps[lo:hi], values=rv.values[lo:hi]))
    return tuple(out)
