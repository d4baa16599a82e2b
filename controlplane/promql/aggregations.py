"""Aggregation operators (sum, avg, count, min, max, group, stddev, stdvar, quantile, topk,
bottomk, limitk, limit_ratio, count_values) with by/without.

Every (group, step) pair is a "cell". Present samples are sorted by cell once; sums then come
from np.add.reduceat (pairwise, so as accurate as Prometheus's Kahan sum except under heavy
cancellation, where the exact Prometheus algorithm runs on the affected cells only).

Steps are independent, so a range query's input is aggregated a block of steps at a time (at
most `selectors.BLOCK_WINDOWS` samples): sorting and reducing the samples of a block stays in
the CPU's cache, where one sort of all (series, step) samples of a 50,000-series range query
did not, and cost more per sample the more series there were. The samples of a cell and their
order are the same either way, so are the results.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import promql_parser as pp

from controlplane.errors import EvalError
from controlplane.model.series import METRIC_NAME, Labels
from controlplane.promql.context import Evaluator
from controlplane.promql.labelcache import factorize
from controlplane.promql.labelfuncs import check_label_name, string_arg
from controlplane.promql.parse import format_float_f, unwrap_parens
from controlplane.promql.selectors import column_blocks
from controlplane.promql.values import F64, I64, Mask, Steps, Vector, merge_same_labels
from controlplane.promql.windows import quantile_sorted

K_OPS = {"topk", "bottomk", "limitk", "limit_ratio"}
INT64_LIMIT = 2.0**63
# Pairwise sums are trusted unless cancellation could hide errors larger than this (relative).
TRUST = 1e-11


def grouping(node: Any) -> tuple[bool, list[str]]:
    modifier = node.modifier
    if modifier is None:
        return False, []
    return modifier.type == pp.AggModifierType.Without, list(modifier.labels)


def group_rows(
    ev: Evaluator, labels: list[Labels], without: bool, names: list[str]
) -> tuple[I64, list[Labels]]:
    """Group id of every row (in order of first appearance) and each group's labels."""
    chosen = frozenset(names) | {METRIC_NAME} if without else frozenset(names)

    def key(lb: Labels) -> Labels:
        if without:
            return tuple([p for p in lb if p[0] not in chosen])
        return tuple([p for p in lb if p[0] in chosen])

    return factorize(ev.labels.derive(("group", without, chosen), labels, key))


@dataclass(frozen=True)
class Cells:
    """Present samples sorted by cell (group * steps + step)."""

    cell: I64  # sorted cell id per sample
    row: I64  # input row per sample
    x: F64  # value per sample
    starts: I64  # first sample of each non-empty cell
    ids: I64  # the cell id of each non-empty cell
    total: int  # number of cells

    @classmethod
    def of(cls, vec: Vector, group_of: I64, groups: int) -> Cells:
        return cls.by_step(vec.values.T, vec.present.T, group_of, groups)

    @classmethod
    def by_step(cls, values: F64, present: Mask, group_of: I64, groups: int) -> Cells:
        """From (steps, series) matrices, so that a block of steps is contiguous. Samples of
        a cell keep the order of their rows, whichever way the matrices are laid out."""
        steps = values.shape[0]
        cols, rows = np.nonzero(present)
        cell = group_of[rows] * steps + cols
        order = stable_order(cell, groups * steps)
        cell, rows, cols = cell[order], rows[order], cols[order]
        starts = (
            np.flatnonzero(np.concatenate([[True], cell[1:] != cell[:-1]])) if len(cell) else cell
        )
        return cls(
            cell=cell,
            row=rows,
            x=values[cols, rows],
            starts=starts,
            ids=cell[starts],
            total=groups * steps,
        )

    @property
    def counts(self) -> I64:
        return np.diff(np.append(self.starts, len(self.cell)))

    def reduce(self, ufunc: np.ufunc, values: F64 | None = None) -> F64:
        data = self.x if values is None else values
        return ufunc.reduceat(data, self.starts) if len(self.starts) else np.empty(0)

    def spread(self, per_cell: F64) -> F64:
        return np.repeat(per_cell, self.counts)

    def layout(self, per_cell: F64, steps: int) -> tuple[F64, np.ndarray]:
        values = np.zeros(self.total)
        present = np.zeros(self.total, dtype=bool)
        values[self.ids] = per_cell
        present[self.ids] = True
        return values.reshape(-1, steps), present.reshape(-1, steps)


def stable_order(keys: I64, bound: int) -> I64:
    """np.argsort(keys, kind="stable") for keys in [0, bound): numpy radix-sorts 16-bit keys
    (linear, several times faster than its merge sort of int64), so wider keys that fit in 32
    bits are sorted by their low half, then stably by their high half."""
    if bound <= 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    if bound <= 1 << 32:
        low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
        high = np.argsort((keys[low] >> 16).astype(np.uint16), kind="stable")
        return low[high]
    return np.argsort(keys, kind="stable")


def aggregate(ev: Evaluator, node: Any, steps: Steps) -> Vector:
    op = str(node.op)
    without, names = grouping(node)
    if op == "count_values":
        return _count_values(ev, node, steps, without, names)
    param = None
    if op in K_OPS or op == "quantile":
        param = ev.scalar(unwrap_parens(node.param), steps).values
    vec = ev.vector(node.expr, steps)
    if op in K_OPS:
        assert param is not None
        return _select_k(ev, op, vec, param, without, names)
    group_of, labels = group_rows(ev, vec.labels, without, names)
    values = np.zeros((len(labels), len(steps)))
    present = np.zeros((len(labels), len(steps)), dtype=bool)
    # steps as rows (one copy): each block of steps below is then contiguous in memory
    by_step = np.ascontiguousarray(vec.values.T), np.ascontiguousarray(vec.present.T)
    for start, stop in column_blocks(len(vec), len(steps)):
        block = by_step[0][start:stop], by_step[1][start:stop]
        cells = Cells.by_step(*block, group_of, len(labels))
        block_param = None if param is None else param[start:stop]
        per_cell = _reduce(ev, op, cells, block_param, stop - start)
        values[:, start:stop], present[:, start:stop] = cells.layout(per_cell, stop - start)
    drop = np.zeros(len(labels), dtype=bool)
    np.logical_or.at(drop, group_of, vec.drop_name)
    return Vector(labels=labels, values=values, present=present, drop_name=drop)


def _reduce(ev: Evaluator, op: str, cells: Cells, param: F64 | None, steps: int) -> F64:
    counts = cells.counts.astype(np.float64)
    if op == "count":
        return counts
    if op == "group":
        return np.ones(len(counts))
    if op in ("max", "min"):
        return cells.reduce(np.fmax if op == "max" else np.fmin)
    if op == "quantile":
        assert param is not None
        for q in np.unique(param).tolist():
            if not 0 <= q <= 1:
                ev.warn(f"PromQL warning: quantile value should be between 0 and 1, got {q:g}")
        return _quantile(cells, param[cells.ids % steps])
    total = _checked_sum(cells)
    if op == "sum":
        return total
    if op == "avg":
        return _average(cells, total, counts)
    if op in ("stddev", "stdvar"):
        variance = _variance(cells, total, counts)
        return np.sqrt(variance) if op == "stddev" else variance
    raise EvalError(f"unsupported aggregation {op!r}")


def _checked_sum(cells: Cells) -> F64:
    total = cells.reduce(np.add)
    magnitude = cells.reduce(np.add, np.abs(cells.x))
    bound = magnitude * np.log2(cells.counts + 1) * np.finfo(np.float64).eps
    doubtful = np.flatnonzero(np.isfinite(total) & (bound > np.abs(total) * TRUST))
    for c in doubtful.tolist():
        total[c] = _kahan(cells.x[cells.starts[c] : cells.starts[c] + cells.counts[c]])
    return total


def _kahan(values: F64) -> float:
    total = comp = 0.0
    for f in values.tolist():
        t = total + f
        if math.isinf(t):
            comp = 0.0
        elif abs(total) >= abs(f):
            comp += (total - t) + f
        else:
            comp += (f - t) + total
        total = t
    return total if math.isinf(total) else total + comp


def _average(cells: Cells, total: F64, counts: F64) -> F64:
    out = total / counts
    finite_inputs = cells.reduce(np.add, (~np.isfinite(cells.x)).astype(np.float64)) == 0
    for c in np.flatnonzero(~np.isfinite(total) & finite_inputs).tolist():
        out[c] = _incremental_mean(cells.x[cells.starts[c] : cells.starts[c] + cells.counts[c]])
    return out


def _incremental_mean(values: F64) -> float:
    """Prometheus's avg: a compensated sum, turning into a running mean if the sum overflows."""
    total, comp, mean, incremental = float(values[0]), 0.0, 0.0, False
    for i, f in enumerate(values[1:].tolist(), start=2):
        if not incremental:
            t, c = _inc(f, total, comp)
            if not math.isinf(t):
                total, comp = t, c
                continue
            incremental, mean, comp = True, total / (i - 1), comp / (i - 1)
        q = (i - 1) / i
        mean, comp = _inc(f / i, q * mean, q * comp)
    if incremental:
        return mean + comp
    return total / len(values) + comp / len(values)


def _inc(f: float, total: float, comp: float) -> tuple[float, float]:
    t = total + f
    if math.isinf(t):
        return t, 0.0
    return t, comp + ((total - t) + f if abs(total) >= abs(f) else (f - t) + total)


def _variance(cells: Cells, total: F64, counts: F64) -> F64:
    mean = total / counts
    deviation = cells.x - cells.spread(mean)
    variance = cells.reduce(np.add, deviation * deviation) / counts
    constant = cells.reduce(np.fmax) == cells.reduce(np.fmin)
    variance = np.where(constant, 0.0, variance)
    finite = cells.reduce(np.add, (~np.isfinite(cells.x)).astype(np.float64)) == 0
    return np.where(finite, variance, np.nan)


def _quantile(cells: Cells, q: F64) -> F64:
    nan = np.isnan(cells.x)
    order = np.lexsort((np.where(nan, 0.0, cells.x), ~nan, cells.cell))
    return quantile_sorted(cells.x[order], cells.starts, cells.counts, q)


def _select_k(
    ev: Evaluator, op: str, vec: Vector, param: F64, without: bool, names: list[str]
) -> Vector:
    if np.isnan(param).any():
        raise EvalError("Ratio value is NaN" if op == "limit_ratio" else "Parameter value is NaN")
    steps = vec.values.shape[1]
    group_of, labels = group_rows(ev, vec.labels, without, names)
    cells = Cells.of(vec, group_of, len(labels))
    col = cells.cell % steps
    if op == "limit_ratio":
        ratio = np.clip(param, -1.0, 1.0)[col]
        offset = np.asarray([_hash_offset(vec.labels[r]) for r in cells.row.tolist()])
        keep = np.where(ratio >= 0, offset < ratio, offset >= 1.0 + ratio)
        order = np.arange(len(cells.cell))
    else:
        if (param >= INT64_LIMIT).any() or (param <= -INT64_LIMIT).any():
            raise EvalError(f"Scalar value {param.max():g} overflows int64")
        k = np.minimum(np.trunc(param), len(vec))[col]
        order = _k_order(op, cells)
        rank = np.arange(len(order)) - np.repeat(cells.starts, cells.counts)
        keep = np.empty(len(order), dtype=bool)
        keep[order] = rank < k[order]
    present = np.zeros_like(vec.present)
    present[cells.row[keep], col[keep]] = True
    out = Vector(labels=vec.labels, values=vec.values, present=present, drop_name=vec.drop_name)
    if steps == 1:
        chosen = order[keep[order]]
        return out.take(cells.row[chosen])
    return out


def _k_order(op: str, cells: Cells) -> I64:
    """Sample order within each cell: best first for topk/bottomk, input order for limitk."""
    if op == "limitk":
        return np.arange(len(cells.cell))
    nan = np.isnan(cells.x)
    key = -cells.x if op == "topk" else cells.x
    return np.lexsort((np.where(nan, 0.0, key), nan, cells.cell))


def _hash_offset(labels: Labels) -> float:
    digest = hashlib.blake2b(repr(labels).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _count_values(
    ev: Evaluator, node: Any, steps: Steps, without: bool, names: list[str]
) -> Vector:
    target = string_arg(ev, unwrap_parens(node.param))
    check_label_name(ev, target, "invalid label name ", quoted=True)
    vec = ev.vector(node.expr, steps)
    keep = set(names) | {METRIC_NAME} if without else set(names) | {target}
    counts: dict[Labels, np.ndarray] = {}
    rows, cols = np.nonzero(vec.present)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        labelled = {**dict(vec.labels[r]), target: format_float_f(float(vec.values[r, c]))}
        if without:
            key = tuple(sorted((k, v) for k, v in labelled.items() if k not in keep))
        else:
            key = tuple(sorted((k, v) for k, v in labelled.items() if k in keep))
        counts.setdefault(key, np.zeros(len(steps)))[c] += 1
    labels = list(counts)
    values = np.vstack([counts[lb] for lb in labels]) if labels else np.empty((0, len(steps)))
    result = Vector(
        labels=labels,
        values=values,
        present=values > 0,
        drop_name=np.zeros(len(labels), dtype=bool),
    )
    return merge_same_labels(result, ev.labels)
