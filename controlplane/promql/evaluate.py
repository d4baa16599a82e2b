"""The evaluator: walks the AST and computes every node for all steps at once.

Limits, as Prometheus's engine has them: the samples held at once (loaded ones and every
intermediate result, each (series, step) cell of a dense vector counting as one, since that is
what memory holds) stay under `max_samples`; a subquery's range holds at most MAX_POINTS steps,
as a range query does; the deadline is checked at every node (and, through
`controlplane.model.deadline`, inside the loops that can run long).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import promql_parser as pp

from controlplane.errors import EvalError, ParseError, QueryTimeout
from controlplane.model.deadline import TIMED_OUT
from controlplane.model.regex import RegexError
from controlplane.model.series import Labels, Matcher, SeriesBatch, SeriesSource
from controlplane.promql.aggregations import aggregate
from controlplane.promql.binops import binary
from controlplane.promql.functions import call
from controlplane.promql.labelcache import LabelCache
from controlplane.promql.parse import Query, at_ms, duration_ms, selector_matchers
from controlplane.promql.selectors import clip_times, drop_stale, pick_latest
from controlplane.promql.values import RangeVector, Scalar, Steps, String, Value, Vector

TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"
MAX_POINTS = 11_000


class Evaluator:
    """One query's evaluation: the source, the query's time frame and its limits."""

    frame: Steps
    query: Query

    def __init__(
        self,
        *,
        source: SeriesSource,
        query: Query,
        frame: Steps,
        lookback_ms: int,
        subquery_step_ms: int,
        max_samples: int,
        clock: Callable[[], float],
        labels: LabelCache,
        deadline: float,
    ) -> None:
        self.source = source
        self.query = query
        self.frame = frame
        self.lookback_ms = lookback_ms
        self.subquery_step_ms = subquery_step_ms
        self.max_samples = max_samples
        self.clock = clock
        self.labels = labels
        self.deadline = deadline
        self.samples = 0
        self._last: Value | None = None
        self.warnings: list[str] = []
        self._handlers: dict[type, Callable[[Any, Steps], Value]] = {
            pp.ParenExpr: lambda node, steps: self.eval(node.expr, steps),
            pp.NumberLiteral: lambda node, steps: Scalar(values=np.full(len(steps), node.val)),
            pp.StringLiteral: lambda node, steps: String(text=node.val),
            pp.UnaryExpr: self._negate,
            pp.VectorSelector: self._vector_selector,
            pp.MatrixSelector: self._matrix_selector,
            pp.SubqueryExpr: self._subquery,
            pp.Call: lambda node, steps: call(self, node, steps),
            pp.AggregateExpr: lambda node, steps: aggregate(self, node, steps),
            pp.BinaryExpr: lambda node, steps: binary(self, node, steps),
        }

    def eval(self, node: Any, steps: Steps) -> Value:
        if self.clock() > self.deadline:
            raise QueryTimeout(TIMED_OUT)
        handler = self._handlers.get(type(node))
        if handler is None:
            raise EvalError(f"unsupported expression {str(node)!r}")
        held = self.samples  # what the caller holds already (the operands it evaluated)
        value = handler(node, steps)
        # and on the way out: one long vectorised step may run past the deadline, and a query
        # past it is a timeout, never an answer that arrives late
        if self.clock() > self.deadline:
            raise QueryTimeout(TIMED_OUT)
        size = _size(value)
        if value is not self._last:  # a pass-through such as (x) holds nothing new
            self.reserve(size)
        # the operands this node read are garbage now: only its result stays held
        self.samples = held + size
        self._last = value
        return value

    def reserve(self, samples: int) -> None:
        """EvalError unless `samples` more fit beside those held (checked before allocating)."""
        if self.samples + samples > self.max_samples:
            raise EvalError(TOO_MANY_SAMPLES)

    def vector(self, node: Any, steps: Steps) -> Vector:
        value = self.eval(node, steps)
        if not isinstance(value, Vector):
            raise EvalError(f"expected instant vector, got {type(value).__name__} in {str(node)!r}")
        return value

    def scalar(self, node: Any, steps: Steps) -> Scalar:
        value = self.eval(node, steps)
        if not isinstance(value, Scalar):
            raise EvalError(f"expected scalar, got {type(value).__name__} in {str(node)!r}")
        return value

    def range_vector(self, node: Any, steps: Steps) -> RangeVector:
        value = self.eval(node, steps)
        if not isinstance(value, RangeVector):
            raise EvalError(f"expected range vector, got {type(value).__name__} in {str(node)!r}")
        return value

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def fetch(self, node: Any, start_ms: int, end_ms: int) -> SeriesBatch:
        matcher_sets = selector_matchers(node)
        if len(matcher_sets) == 1:
            batch = self._select(matcher_sets[0], start_ms, end_ms)
        else:
            found: dict[Labels, Any] = {}
            for matchers in matcher_sets:
                part = self._select(matchers, start_ms, end_ms)
                for i, lb in enumerate(part.labels):
                    found.setdefault(lb, part.series(i))
            batch = SeriesBatch.from_series([found[lb] for lb in sorted(found)])
        self.reserve(len(batch.timestamps))
        self.samples += len(batch.timestamps)
        return batch

    def _select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> SeriesBatch:
        try:
            return self.source.select_batch(matchers, start_ms, end_ms)
        except RegexError as exc:  # parse_query refuses them first; this is the backstop
            raise ParseError(f"1:1: parse error: {exc}") from None

    def _times(self, node: Any, steps: Steps) -> np.ndarray:
        """Per step, the time a selector or subquery looks at (@ and offset applied)."""
        at = at_ms(node, self.frame.start_ms, self.frame.end_ms)
        base = steps.times if at is None else np.full(len(steps), at, dtype=np.int64)
        return clip_times(base - duration_ms(node.offset))

    def _vector_selector(self, node: Any, steps: Steps) -> Vector:
        refs = self._times(node, steps)
        batch = self.fetch(node, int(refs.min()) - self.lookback_ms + 1, int(refs.max()))
        self.reserve(len(batch) * len(steps))  # few samples can fill many steps
        values, present, ts = pick_latest(batch, refs, self.lookback_ms)
        return Vector(
            labels=batch.labels,
            values=values,
            present=present,
            drop_name=np.zeros(len(batch), dtype=bool),
            sample_ts=ts,
        ).nonempty()

    def _matrix_selector(self, node: Any, steps: Steps) -> RangeVector:
        selector = node.vector_selector
        range_ms = duration_ms(node.range)
        ends = self._times(selector, steps)
        batch = drop_stale(self.fetch(selector, int(ends.min()) - range_ms + 1, int(ends.max())))
        self.reserve(len(batch) * len(steps))  # what the function over it will produce
        sizes = np.diff(batch.offsets)
        if (sizes == 0).any():
            keep = np.flatnonzero(sizes > 0)
            batch = SeriesBatch.from_series([batch.series(int(i)) for i in keep])
        return RangeVector(
            labels=batch.labels,
            timestamps=batch.timestamps,
            values=batch.values,
            offsets=batch.offsets,
            drop_name=np.zeros(len(batch), dtype=bool),
            ends=ends,
            range_ms=range_ms,
        )

    def _subquery(self, node: Any, steps: Steps) -> RangeVector:
        step_ms = duration_ms(node.step) or self.subquery_step_ms
        range_ms = duration_ms(node.range)
        ends = self._times(node, steps)
        # Inner steps are aligned to multiples of the step, as Prometheus does.
        first = (int(ends.min()) - range_ms) // step_ms * step_ms + step_ms
        last = int(ends.max())
        if first > last:
            inner = Vector.empty(0)
            times = np.empty(0, dtype=np.int64)
        else:
            # as a range query's steps: the points each window of the subquery holds
            if range_ms // step_ms > MAX_POINTS:
                raise EvalError(
                    f"subquery {str(node)!r} exceeded maximum resolution of 11,000 points per "
                    f"timeseries ({range_ms // step_ms:,} in its range). Try a larger step"
                )
            self.reserve((last - first) // step_ms + 1)  # the inner grid, before it exists
            inner_steps = Steps.grid(first, last, step_ms)
            inner = self.vector(node.expr, inner_steps)
            self.reserve(len(inner) * len(steps))  # what the function over it will produce
            times = inner_steps.times
        counts = inner.present.sum(axis=1)
        offsets = np.zeros(len(inner) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        grid = np.broadcast_to(times, inner.present.shape)
        return RangeVector(
            labels=inner.labels,
            timestamps=grid[inner.present],
            values=inner.values[inner.present],
            offsets=offsets,
            drop_name=inner.drop_name,
            ends=ends,
            range_ms=range_ms,
        )

    def _negate(self, node: Any, steps: Steps) -> Value:
        value = self.eval(node.expr, steps)
        if isinstance(value, Scalar):
            return Scalar(values=-value.values)
        if not isinstance(value, Vector):
            raise EvalError(f"unary minus needs a scalar or instant vector: {str(node)!r}")
        return Vector(
            labels=value.labels,
            values=-value.values,
            present=value.present,
            drop_name=np.ones(len(value), dtype=bool),
        )


def _size(value: Value) -> int:
    """Samples a value holds: every cell of a dense vector, every sample of a range vector."""
    if isinstance(value, Vector):
        return int(value.values.size)
    if isinstance(value, Scalar):
        return len(value.values)
    if isinstance(value, RangeVector):
        return len(value.timestamps)
    return 0
