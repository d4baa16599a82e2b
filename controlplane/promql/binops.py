"""Binary operators: arithmetic, comparisons (with `bool`), atan2, and/or/unless, with vector
matching (on/ignoring, group_left/group_right) and Prometheus's error messages.

Vector-vector matching is done for all steps at once: series are mapped to match-group ids,
and for each (group, step) the single series of the "one" side is found with bincount-style
accumulation; duplicates at a step are the many-to-many error.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import promql_parser as pp

from controlplane.errors import EvalError
from controlplane.model.series import METRIC_NAME, Labels
from controlplane.promql.context import Evaluator
from controlplane.promql.labelcache import factorize
from controlplane.promql.parse import format_labels
from controlplane.promql.values import (
    DUPLICATE_LABELSET,
    F64,
    I64,
    Mask,
    Scalar,
    Steps,
    Value,
    Vector,
    merge_same_labels,
)

ARITHMETIC: dict[str, Callable[[F64, F64], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
    "atan2": np.arctan2,
}
COMPARISON: dict[str, Callable[[F64, F64], Mask]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}
SET_OPERATORS = {"and", "or", "unless"}
MANY_TO_ONE_IMPLICIT = (
    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
)
GROUPING_NOT_UNIQUE = "multiple matches for labels: grouping labels must ensure unique matches"


def binary(ev: Evaluator, node: Any, steps: Steps) -> Value:
    op = str(node.op)
    mod = node.modifier
    return_bool = bool(mod is not None and mod.return_bool)
    fill = mod.fill_values if mod is not None else None
    if fill is not None and (fill.lhs is not None or fill.rhs is not None):
        raise EvalError(f"fill modifiers are not supported: {str(node)!r}")
    lhs = ev.eval(node.lhs, steps)
    rhs = ev.eval(node.rhs, steps)
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        if op in COMPARISON:
            return Scalar(values=COMPARISON[op](lhs.values, rhs.values).astype(np.float64))
        return Scalar(values=ARITHMETIC[op](lhs.values, rhs.values))
    if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
        return _vector_scalar(op, lhs, rhs.values, swapped=False, return_bool=return_bool)
    if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
        return _vector_scalar(op, rhs, lhs.values, swapped=True, return_bool=return_bool)
    if isinstance(lhs, Vector) and isinstance(rhs, Vector):
        if op in SET_OPERATORS:
            return _set_operation(ev, op, lhs, rhs, mod)
        return _matched(ev, op, lhs, rhs, mod, return_bool)
    raise EvalError(f"operator {op!r} is not defined between {str(node)!r}")


def _vector_scalar(
    op: str, vec: Vector, scalar: F64, *, swapped: bool, return_bool: bool
) -> Vector:
    left, right = (scalar[None, :], vec.values) if swapped else (vec.values, scalar[None, :])
    if op in COMPARISON:
        keep = COMPARISON[op](left, right)
        if return_bool:
            return _with(vec, keep.astype(np.float64), vec.present, drop=True)
        return _with(vec, vec.values, vec.present & keep, drop=False)
    return _with(vec, ARITHMETIC[op](left, right), vec.present, drop=True)


def _with(vec: Vector, values: F64, present: Mask, *, drop: bool) -> Vector:
    return Vector(
        labels=vec.labels,
        values=values,
        present=present,
        drop_name=np.ones(len(vec), dtype=bool) if drop else vec.drop_name,
    )


def _signatures(ev: Evaluator, mod: Any, *sides: Vector) -> tuple[int, list[I64]]:
    """Match-group ids of every row of each side, in one id space; and how many groups."""
    matching = mod.matching if mod is not None else None
    on = matching is not None and matching.type == pp.LabelModifierType.Include
    names = frozenset(matching.labels if matching is not None else ())
    dropped = names | {METRIC_NAME}

    def sig(lb: Labels) -> Labels:
        if on:
            return tuple([p for p in lb if p[0] in names])
        return tuple([p for p in lb if p[0] not in dropped])

    keys = [k for side in sides for k in ev.labels.derive(("match", on, names), side.labels, sig)]
    codes, distinct = factorize(keys)
    bounds = np.cumsum([0] + [len(side) for side in sides])
    return len(distinct), [codes[a:b] for a, b in itertools.pairwise(bounds.tolist())]


def _presence_by_group(groups: I64, present: Mask, count: int) -> I64:
    out = np.zeros((count, present.shape[1]), dtype=np.int64)
    np.add.at(out, groups, present)
    return out


def _set_operation(ev: Evaluator, op: str, lhs: Vector, rhs: Vector, mod: Any) -> Vector:
    groups, (gl, gr) = _signatures(ev, mod, lhs, rhs)
    if op == "or":
        on_left = _presence_by_group(gl, lhs.present, groups) > 0
        extra = rhs.present & ~on_left[gr] if len(rhs) else rhs.present
        combined = Vector(
            labels=lhs.labels + rhs.labels,
            values=np.vstack([lhs.values, rhs.values]),
            present=np.vstack([lhs.present, extra]),
            drop_name=np.concatenate([lhs.drop_name, rhs.drop_name]),
        )
        return merge_same_labels(combined.nonempty(), ev.labels)
    on_right = _presence_by_group(gr, rhs.present, groups) > 0
    hit = on_right[gl] if len(lhs) else lhs.present
    keep = lhs.present & (hit if op == "and" else ~hit)
    return _with(lhs, lhs.values, keep, drop=False).nonempty()


def _matched(
    ev: Evaluator, op: str, lhs: Vector, rhs: Vector, mod: Any, return_bool: bool
) -> Vector:
    card = mod.card if mod is not None else pp.VectorMatchCardinality.OneToOne
    swapped = card == pp.VectorMatchCardinality.OneToMany
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    steps = many.values.shape[1]
    if len(one) == 0 or len(many) == 0:
        return Vector.empty(steps)
    groups, (g_one, group) = _signatures(ev, mod, one, many)
    counts = _presence_by_group(g_one, one.present, groups)
    duplicated = (counts > 1) & np.asarray(many.present.any(axis=0))[None, :]
    if duplicated.any():
        _duplicate_error(one, g_one, duplicated, mod, "left" if swapped else "right")
    row_plus_one = np.zeros((groups, steps), dtype=np.int64)
    np.add.at(row_plus_one, g_one, one.present * (np.arange(len(one)) + 1)[:, None])
    matched = many.present & (counts[group] == 1)
    partner = np.where(matched, row_plus_one[group] - 1, 0)
    if card == pp.VectorMatchCardinality.OneToOne:
        used = _presence_by_group(group, matched, groups)
        if (used > 1).any():
            raise EvalError(MANY_TO_ONE_IMPLICIT)
    other = one.values[partner, np.arange(steps)[None, :]]
    left, right = (other, many.values) if swapped else (many.values, other)
    if op in COMPARISON:
        keep = COMPARISON[op](left, right)
        values = keep.astype(np.float64) if return_bool else left
        present = matched if return_bool else matched & keep
    else:
        values, present = ARITHMETIC[op](left, right), matched
    return _result_rows(ev, op, many, one, mod, values, matched, present, partner, return_bool)


def _result_rows(
    ev: Evaluator,
    op: str,
    many: Vector,
    one: Vector,
    mod: Any,
    values: F64,
    matched: Mask,
    present: Mask,
    partner: I64,
    return_bool: bool,
) -> Vector:
    include = list(mod.group_labels or []) if mod is not None else []
    rows = np.arange(len(many))
    if include:
        cells = np.flatnonzero(matched.ravel())
        pairs = np.unique(rows.repeat(matched.shape[1])[cells] * len(one) + partner.ravel()[cells])
        rows, partners = pairs // len(one), pairs % len(one)
        use = (partner[rows] == partners[:, None]) & matched[rows]
    else:
        partners = np.zeros(len(rows), dtype=np.int64)
        use = matched
    if include:
        labels = [
            _result_labels(op, many.labels[r], one.labels[p], mod, include)
            for r, p in zip(rows.tolist(), partners.tolist(), strict=True)
        ]
    else:
        spec = ("result", op in ARITHMETIC, _grouped(mod), _matching_key(mod))
        derive = ev.labels.derive
        labels = derive(spec, many.labels, lambda lb: _result_labels(op, lb, (), mod, include))
    arithmetic = op in ARITHMETIC
    drop = many.drop_name[rows] | return_bool if not arithmetic else np.zeros(len(rows), bool)
    out = Vector(labels=labels, values=values[rows], present=present[rows] & use, drop_name=drop)
    checked = Vector(labels=labels, values=out.values, present=use, drop_name=drop)
    message = GROUPING_NOT_UNIQUE if include or _grouped(mod) else DUPLICATE_LABELSET
    merge_same_labels(checked, ev.labels, message)
    return merge_same_labels(out.nonempty(), ev.labels)


def _matching_key(mod: Any) -> tuple[bool, frozenset[str]] | None:
    matching = mod.matching if mod is not None else None
    if matching is None:
        return None
    return matching.type == pp.LabelModifierType.Include, frozenset(matching.labels)


def _grouped(mod: Any) -> bool:
    return mod is not None and mod.card != pp.VectorMatchCardinality.OneToOne


def _result_labels(op: str, many: Labels, one: Labels, mod: Any, include: list[str]) -> Labels:
    labels = dict(many)
    if op in ARITHMETIC:
        labels.pop(METRIC_NAME, None)
    matching = mod.matching if mod is not None else None
    if not _grouped(mod) and matching is not None:
        names = set(matching.labels)
        if matching.type == pp.LabelModifierType.Include:
            labels = {k: v for k, v in labels.items() if k in names}
        else:
            labels = {k: v for k, v in labels.items() if k not in names}
    if include:
        source = dict(one)
        for name in include:
            if source.get(name):
                labels[name] = source[name]
            else:
                labels.pop(name, None)
    return tuple(sorted(labels.items()))


def _duplicate_error(one: Vector, groups: I64, duplicated: Mask, mod: Any, side: str) -> None:
    group, step = np.argwhere(duplicated)[0]
    rows = np.flatnonzero((groups == group) & one.present[:, step])[:2]
    pair = sorted(one.labels[r] for r in rows.tolist())
    matching = mod.matching if mod is not None else None
    names = set(matching.labels) if matching is not None else set()
    on = matching is not None and matching.type == pp.LabelModifierType.Include
    shown = tuple(p for p in pair[0] if (p[0] in names) == on and (on or p[0] != METRIC_NAME))
    raise EvalError(
        f"found duplicate series for the match group {format_labels(shown)} on the {side} "
        f"hand-side of the operation: [{format_labels(pair[0])}, {format_labels(pair[1])}]"
        ";many-to-many matching not allowed: matching labels must be unique on one side"
    )
