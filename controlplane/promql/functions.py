"""Function calls: dispatch, range-vector functions' plumbing, and the instant functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import promql_parser as pp

from controlplane.errors import EvalError
from controlplane.promql import histograms, labelfuncs, rangefuncs
from controlplane.promql.context import Evaluator
from controlplane.promql.parse import unwrap_parens
from controlplane.promql.values import F64, Scalar, Steps, Value, Vector
from controlplane.promql.windows import Windows, evaluate_blocked, to_vector

Args = list[Any]
InstantFn = Callable[[Evaluator, Args, Steps], Value]
RangeFn = Callable[[Windows, list[F64]], rangefuncs.Result]

# name -> (index of the range-vector argument, implementation)
RANGE_FUNCTIONS: dict[str, tuple[int, RangeFn]] = {
    "rate": (0, lambda w, a: rangefuncs.extrapolated_rate(w, counter=True, per_second=True)),
    "increase": (0, lambda w, a: rangefuncs.extrapolated_rate(w, counter=True, per_second=False)),
    "delta": (0, lambda w, a: rangefuncs.extrapolated_rate(w, counter=False, per_second=False)),
    "irate": (0, lambda w, a: rangefuncs.instant_value(w, per_second=True)),
    "idelta": (0, lambda w, a: rangefuncs.instant_value(w, per_second=False)),
    "deriv": (0, lambda w, a: rangefuncs.deriv(w)),
    "predict_linear": (0, lambda w, a: rangefuncs.predict_linear(w, a[0])),
    "resets": (0, lambda w, a: rangefuncs.resets(w)),
    "changes": (0, lambda w, a: rangefuncs.changes(w)),
    "avg_over_time": (0, lambda w, a: rangefuncs.avg_over_time(w)),
    "sum_over_time": (0, lambda w, a: rangefuncs.sum_over_time(w)),
    "count_over_time": (0, lambda w, a: rangefuncs.count_over_time(w)),
    "min_over_time": (0, lambda w, a: rangefuncs.min_over_time(w)),
    "max_over_time": (0, lambda w, a: rangefuncs.max_over_time(w)),
    "stddev_over_time": (0, lambda w, a: rangefuncs.stddev_over_time(w)),
    "stdvar_over_time": (0, lambda w, a: rangefuncs.stdvar_over_time(w)),
    "last_over_time": (0, lambda w, a: rangefuncs.last_over_time(w)),
    "first_over_time": (0, lambda w, a: rangefuncs.first_over_time(w)),
    "present_over_time": (0, lambda w, a: rangefuncs.present_over_time(w)),
    "mad_over_time": (0, lambda w, a: rangefuncs.mad_over_time(w)),
    "quantile_over_time": (1, lambda w, a: rangefuncs.quantile_over_time(w, a[0])),
    "ts_of_max_over_time": (0, lambda w, a: rangefuncs.ts_of_max_over_time(w)),
    "ts_of_min_over_time": (0, lambda w, a: rangefuncs.ts_of_min_over_time(w)),
    "ts_of_last_over_time": (0, lambda w, a: rangefuncs.ts_of_last_over_time(w)),
    "ts_of_first_over_time": (0, lambda w, a: rangefuncs.ts_of_first_over_time(w)),
    "double_exponential_smoothing": (
        0,
        lambda w, a: rangefuncs.double_exponential_smoothing(w, a[0], a[1]),
    ),
}
RANGE_FUNCTIONS["holt_winters"] = RANGE_FUNCTIONS["double_exponential_smoothing"]
# These act like an offset, so the series keeps its name.
KEEPS_NAME = {"last_over_time", "first_over_time"}


def call(ev: Evaluator, node: Any, steps: Steps) -> Value:
    name = node.func.name
    args = [unwrap_parens(a) for a in node.args]
    if name == "absent_over_time":
        return _absent_over_time(ev, args, steps)
    if name in RANGE_FUNCTIONS:
        return _range_call(ev, name, args, steps)
    fn = INSTANT_FUNCTIONS.get(name) or histograms.FUNCTIONS.get(name)
    if fn is None:
        fn = labelfuncs.FUNCTIONS.get(name)
    if fn is None:
        raise EvalError(f"function {name!r} is not supported")
    return fn(ev, args, steps)


def _range_call(ev: Evaluator, name: str, args: Args, steps: Steps) -> Vector:
    index, fn = RANGE_FUNCTIONS[name]
    scalars = [ev.scalar(a, steps).values for i, a in enumerate(args) if i != index]
    if name in ("double_exponential_smoothing", "holt_winters"):
        _check_factors(scalars[0], scalars[1])
    if name == "quantile_over_time":
        _check_quantile(ev, scalars[0])
    rv = ev.range_vector(args[index], steps)
    values, ok = evaluate_blocked(rv, steps, lambda win: fn(win, scalars))
    return to_vector(rv, values, ok, drop_name=name not in KEEPS_NAME)


def _check_factors(sf: F64, tf: F64) -> None:
    for value in sf.tolist():
        if not 0 < value < 1:
            raise EvalError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {value:f}")
    for value in tf.tolist():
        if not 0 < value < 1:
            raise EvalError(f"invalid trend factor. Expected: 0 < tf < 1, got: {value:f}")


def _check_quantile(ev: Evaluator, q: F64) -> None:
    for value in np.unique(q).tolist():
        if not 0 <= value <= 1:
            ev.warn(f"PromQL warning: quantile value should be between 0 and 1, got {value:g}")


def _absent_over_time(ev: Evaluator, args: Args, steps: Steps) -> Vector:
    rv = ev.range_vector(args[0], steps)
    win = Windows.of(rv, steps)
    seen = (win.cnt > 0).reshape(len(rv), len(steps)).any(axis=0)
    selector = args[0].vector_selector if isinstance(args[0], pp.MatrixSelector) else None
    return labelfuncs.absent_vector(selector, np.asarray(~seen))


def _elementwise(fn: Callable[[F64], F64]) -> InstantFn:
    def run(ev: Evaluator, args: Args, steps: Steps) -> Value:
        vec = ev.vector(args[0], steps)
        return _replace(vec, fn(vec.values))

    return run


def _replace(vec: Vector, values: F64, present: np.ndarray | None = None) -> Vector:
    return Vector(
        labels=vec.labels,
        values=values,
        present=vec.present if present is None else present,
        drop_name=np.ones(len(vec), dtype=bool),
    )


def _round(ev: Evaluator, args: Args, steps: Steps) -> Value:
    vec = ev.vector(args[0], steps)
    nearest = ev.scalar(args[1], steps).values if len(args) > 1 else np.ones(len(steps))
    inverse = 1.0 / nearest
    return _replace(vec, np.floor(vec.values * inverse + 0.5) / inverse)


def _clamp(ev: Evaluator, args: Args, steps: Steps, *, low: bool, high: bool) -> Value:
    vec = ev.vector(args[0], steps)
    rest = iter(args[1:])
    lo = ev.scalar(next(rest), steps).values if low else np.full(len(steps), -np.inf)
    hi = ev.scalar(next(rest), steps).values if high else np.full(len(steps), np.inf)
    present = vec.present & ~(hi < lo)[None, :]
    return _replace(vec, np.maximum(lo, np.minimum(hi, vec.values)), present)


def _sgn(values: F64) -> F64:
    return np.where(values < 0, -1.0, np.where(values > 0, 1.0, values))


def _timestamp(ev: Evaluator, args: Args, steps: Steps) -> Value:
    vec = ev.vector(args[0], steps)
    if isinstance(args[0], pp.VectorSelector) and vec.sample_ts is not None:
        return _replace(vec, vec.sample_ts / 1000.0)
    return _replace(vec, np.broadcast_to(steps.times / 1000.0, vec.values.shape).copy())


DatePart = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _date(part: DatePart) -> InstantFn:
    def run(ev: Evaluator, args: Args, steps: Steps) -> Value:
        vec = ev.vector(args[0], steps) if args else _constant(steps.times / 1000.0)
        finite = np.isfinite(vec.values) & (np.abs(vec.values) < 1e14)
        secs = np.trunc(np.where(finite, vec.values, 0.0)).astype(np.int64)
        days = np.floor_divide(secs, 86400)
        values = part(days, secs - days * 86400).astype(np.float64)
        return _replace(vec, np.where(finite, values, np.nan))

    return run


def _month_start(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[M]")


DATE_PARTS: dict[str, DatePart] = {
    "year": lambda d, s: _month_start(d).astype("datetime64[Y]").astype(np.int64) + 1970,
    "month": lambda d, s: _month_start(d).astype(np.int64) % 12 + 1,
    "day_of_month": lambda d, s: d - _month_start(d).astype("datetime64[D]").astype(np.int64) + 1,
    "day_of_week": lambda d, s: (d + 4) % 7,
    "day_of_year": lambda d, s: (
        d
        - d.astype("datetime64[D]").astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
        + 1
    ),
    "days_in_month": lambda d, s: (
        (_month_start(d) + 1).astype("datetime64[D]") - _month_start(d).astype("datetime64[D]")
    ).astype(np.int64),
    "hour": lambda d, s: s // 3600,
    "minute": lambda d, s: s % 3600 // 60,
}


def _constant(values: F64) -> Vector:
    return Vector(
        labels=[()],
        values=values[None, :].astype(np.float64),
        present=np.ones((1, len(values)), dtype=bool),
        drop_name=np.zeros(1, dtype=bool),
    )


def _vector(ev: Evaluator, args: Args, steps: Steps) -> Value:
    return _constant(ev.scalar(args[0], steps).values)


def _scalar(ev: Evaluator, args: Args, steps: Steps) -> Value:
    vec = ev.vector(args[0], steps)
    count = vec.present.sum(axis=0)
    total = np.where(vec.present, vec.values, 0.0).sum(axis=0)
    return Scalar(values=np.where(count == 1, total, np.nan))


def _frame_value(pick: Callable[[Evaluator], float]) -> InstantFn:
    return lambda ev, args, steps: Scalar(values=np.full(len(steps), pick(ev)))


def _pairwise(fn: Callable[[F64, F64], F64]) -> InstantFn:
    def run(ev: Evaluator, args: Args, steps: Steps) -> Value:
        return Scalar(values=fn(ev.scalar(args[0], steps).values, ev.scalar(args[1], steps).values))

    return run


def _sort(descending: bool) -> InstantFn:
    def run(ev: Evaluator, args: Args, steps: Steps) -> Value:
        vec = ev.vector(args[0], steps)
        if len(steps) > 1:
            ev.warn(
                "PromQL warning: sort is ineffective for range queries since results "
                "are always ordered by labels"
            )
            return vec
        values = vec.values[:, 0]
        key = -values if descending else values
        return vec.take(np.lexsort((key, np.isnan(values))))

    return run


def _info(ev: Evaluator, args: Args, steps: Steps) -> Value:
    raise EvalError("function 'info' is not supported")


INSTANT_FUNCTIONS: dict[str, InstantFn] = {
    "abs": _elementwise(np.abs),
    "ceil": _elementwise(np.ceil),
    "floor": _elementwise(np.floor),
    "exp": _elementwise(np.exp),
    "sqrt": _elementwise(np.sqrt),
    "ln": _elementwise(np.log),
    "log2": _elementwise(np.log2),
    "log10": _elementwise(np.log10),
    "sin": _elementwise(np.sin),
    "cos": _elementwise(np.cos),
    "tan": _elementwise(np.tan),
    "asin": _elementwise(np.arcsin),
    "acos": _elementwise(np.arccos),
    "atan": _elementwise(np.arctan),
    "sinh": _elementwise(np.sinh),
    "cosh": _elementwise(np.cosh),
    "tanh": _elementwise(np.tanh),
    "asinh": _elementwise(np.arcsinh),
    "acosh": _elementwise(np.arccosh),
    "atanh": _elementwise(np.arctanh),
    "deg": _elementwise(lambda v: v * 180 / np.pi),
    "rad": _elementwise(lambda v: v * np.pi / 180),
    "sgn": _elementwise(_sgn),
    "round": _round,
    "clamp": lambda ev, a, s: _clamp(ev, a, s, low=True, high=True),
    "clamp_min": lambda ev, a, s: _clamp(ev, a, s, low=True, high=False),
    "clamp_max": lambda ev, a, s: _clamp(ev, a, s, low=False, high=True),
    "timestamp": _timestamp,
    "time": lambda ev, args, steps: Scalar(values=steps.times / 1000.0),
    "vector": _vector,
    "scalar": _scalar,
    "pi": lambda ev, args, steps: Scalar(values=np.full(len(steps), np.pi)),
    "min_of": _pairwise(np.minimum),
    "max_of": _pairwise(np.maximum),
    "step": _frame_value(lambda ev: ev.frame.step_ms / 1000.0),
    "range": _frame_value(lambda ev: (ev.frame.end_ms - ev.frame.start_ms) / 1000.0),
    "start": _frame_value(lambda ev: ev.frame.start_ms / 1000.0),
    "end": _frame_value(lambda ev: ev.frame.end_ms / 1000.0),
    "sort": _sort(descending=False),
    "sort_desc": _sort(descending=True),
    "info": _info,
    **{name: _date(part) for name, part in DATE_PARTS.items()},
}
