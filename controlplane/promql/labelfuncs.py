"""Functions about labels rather than values: label_replace, label_join, sort_by_label, absent."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import promql_parser as pp

from controlplane.errors import EvalError
from controlplane.model.regex import RegexError, Submatch, anchored_with_groups
from controlplane.model.series import METRIC_NAME, Labels, MatchOp
from controlplane.promql.context import Evaluator
from controlplane.promql.parse import go_quote, selector_matchers
from controlplane.promql.values import Mask, Steps, Value, Vector, merge_same_labels

Args = list[Any]
_GO_TEMPLATE = re.compile(r"\$(\$|\{(\w+)\}|(\w+))")


def string_arg(ev: Evaluator, node: Any) -> str:
    if not isinstance(node, pp.StringLiteral):
        raise EvalError(f"expected a string literal, got {str(node)!r}")
    return str(node.val)


def check_label_name(ev: Evaluator, name: str, message: str, *, quoted: bool = False) -> None:
    """Label names are any non-empty UTF-8 (Prometheus 3); literals Go would not decode to
    valid UTF-8 are refused. `message` gets the name appended (Go-quoted if `quoted`)."""
    if name and name not in ev.query.invalid_strings:
        return
    shown = ev.query.invalid_strings.get(name) or go_quote(name)
    raise EvalError(message + (shown if quoted else shown[1:-1]))


def _set_label(labels: Labels, name: str, value: str) -> Labels:
    kept = [p for p in labels if p[0] != name]
    if value:
        kept.append((name, value))
    return tuple(sorted(kept))


def _relabel(ev: Evaluator, vec: Vector, new_labels: list[Labels], names_set: list[bool]) -> Vector:
    drop = vec.drop_name & ~np.asarray(names_set, dtype=bool)
    out = Vector(labels=new_labels, values=vec.values, present=vec.present, drop_name=drop)
    return merge_same_labels(out, ev.labels)


def _label_replace(ev: Evaluator, args: Args, steps: Steps) -> Value:
    dst, repl, src, regex = (string_arg(ev, a) for a in args[1:5])
    try:
        pattern = anchored_with_groups(regex)
    except RegexError:
        raise EvalError(f"invalid regular expression in label_replace(): {regex}") from None
    check_label_name(ev, dst, "invalid destination label name in label_replace(): ")
    vec = ev.vector(args[0], steps)
    labels, touched = [], []
    for lb in vec.labels:
        match = pattern.submatch(dict(lb).get(src, ""))
        if match is None:
            labels.append(lb)
            touched.append(False)
            continue
        labels.append(_set_label(lb, dst, _expand(repl, match)))
        touched.append(dst == METRIC_NAME)
    return _relabel(ev, vec, labels, touched)


def _expand(template: str, match: Submatch) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name}, $$; unknown groups expand to ''."""

    def group(m: re.Match[str]) -> str:
        if m.group(1) == "$":
            return "$"
        key: str | int = m.group(2) or m.group(3)
        if isinstance(key, str) and key.isdigit():
            key = int(key)
        return match.group(key)

    return _GO_TEMPLATE.sub(group, template)


def _label_join(ev: Evaluator, args: Args, steps: Steps) -> Value:
    dst, sep = string_arg(ev, args[1]), string_arg(ev, args[2])
    sources = [string_arg(ev, a) for a in args[3:]]
    for src in sources:
        check_label_name(ev, src, "invalid source label name in label_join(): ")
    check_label_name(ev, dst, "invalid destination label name in label_join(): ")
    vec = ev.vector(args[0], steps)
    labels = []
    for lb in vec.labels:
        values = dict(lb)
        labels.append(_set_label(lb, dst, sep.join(values.get(s, "") for s in sources)))
    return _relabel(ev, vec, labels, [dst == METRIC_NAME] * len(labels))


def _natural_key(value: str) -> list[tuple[int, int | str]]:
    return [
        (0, int(chunk)) if chunk.isdigit() else (1, chunk)
        for chunk in re.findall(r"\d+|\D+", value)
    ]


def _natural_cmp(a: str, b: str) -> int:
    for x, y in zip(_natural_key(a), _natural_key(b), strict=False):
        if x[0] == 0 and y[0] == 0:
            if x[1] != y[1]:
                return -1 if x[1] < y[1] else 1  # type: ignore[operator]
        elif x[1] != y[1]:
            return -1 if str(x[1]) < str(y[1]) else 1
    return (len(a) > len(b)) - (len(a) < len(b))


def _sort_by_label(descending: bool) -> Callable[[Evaluator, Args, Steps], Value]:
    def run(ev: Evaluator, args: Args, steps: Steps) -> Value:
        names = [string_arg(ev, a) for a in args[1:]]
        vec = ev.vector(args[0], steps)
        if len(steps) > 1:
            ev.warn(
                "PromQL warning: sort is ineffective for range queries since results "
                "are always ordered by labels"
            )
            return vec
        sign = -1 if descending else 1

        def compare(i: int, j: int) -> int:
            a, b = dict(vec.labels[i]), dict(vec.labels[j])
            for name in names:
                x, y = a.get(name, ""), b.get(name, "")
                if x != y:
                    return sign * _natural_cmp(x, y)
            la, lb = vec.labels[i], vec.labels[j]
            return sign * ((la > lb) - (la < lb))

        order = sorted(range(len(vec)), key=functools.cmp_to_key(compare))
        return vec.take(order)

    return run


def absent_labels(selector: Any) -> Labels:
    """Labels absent() reports: those set by exactly one equality matcher."""
    if selector is None:
        return ()
    found: dict[str, str] = {}
    seen: set[str] = set()
    for m in selector_matchers(selector)[0]:
        if m.name == METRIC_NAME:
            continue
        if m.op is MatchOp.EQ and m.name not in seen:
            found[m.name] = m.value
        else:
            found.pop(m.name, None)
        seen.add(m.name)
    return tuple(sorted((k, v) for k, v in found.items() if v))


def absent_vector(selector: Any, missing: Mask) -> Vector:
    return Vector(
        labels=[absent_labels(selector)],
        values=np.ones((1, len(missing))),
        present=missing[None, :],
        drop_name=np.zeros(1, dtype=bool),
    )


def _absent(ev: Evaluator, args: Args, steps: Steps) -> Value:
    vec = ev.vector(args[0], steps)
    selector = args[0] if isinstance(args[0], pp.VectorSelector) else None
    return absent_vector(selector, np.asarray(~vec.present.any(axis=0)))


FUNCTIONS: dict[str, Callable[[Evaluator, Args, Steps], Value]] = {
    "label_replace": _label_replace,
    "label_join": _label_join,
    "sort_by_label": _sort_by_label(descending=False),
    "sort_by_label_desc": _sort_by_label(descending=True),
    "absent": _absent,
}
