"""promtool's unit-test file format, parsed strictly (unknown fields refused, as promtool's
yaml.UnmarshalStrict), rule_files resolved relative to the file and globbed."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from controlplane.errors import ConfigError
from controlplane.model import yamltext
from controlplane.model.times import parse_duration
from controlplane.rules.unittest_format import model_duration

DEFAULT_EVALUATION_INTERVAL_MS = 60_000

_FILE_FIELDS = ("rule_files", "evaluation_interval", "group_eval_order", "tests")
_GROUP_FIELDS = (
    "interval",
    "input_series",
    "alert_rule_test",
    "promql_expr_test",
    "external_labels",
    "external_url",
    "name",
)


@dataclass(frozen=True, kw_only=True)
class ExpAlert:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AlertTest:
    eval_time_ms: int
    alertname: str
    exp_alerts: tuple[ExpAlert, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ExpSample:
    labels: str
    value: float


@dataclass(frozen=True, kw_only=True)
class ExprTest:
    expr: str
    eval_time_ms: int
    exp_samples: tuple[ExpSample, ...] = ()


@dataclass(frozen=True, kw_only=True)
class InputSeries:
    series: str
    values: str


@dataclass(frozen=True, kw_only=True)
class UnitTestGroup:
    interval_ms: int
    input_series: tuple[InputSeries, ...] = ()
    alert_tests: tuple[AlertTest, ...] = ()
    expr_tests: tuple[ExprTest, ...] = ()
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    name: str = ""

    def max_eval_time_ms(self) -> int:
        times = [t.eval_time_ms for t in self.alert_tests]
        times += [t.eval_time_ms for t in self.expr_tests]
        return max(times, default=0)


@dataclass(frozen=True, kw_only=True)
class UnitTestFile:
    path: str
    rule_files: tuple[str, ...]
    evaluation_interval_ms: int
    group_eval_order: tuple[str, ...]
    tests: tuple[UnitTestGroup, ...]


def parse_unit_test_file(path: str | Path, *, warn: TextIO | None = None) -> UnitTestFile:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"open {path}: {exc.strerror or exc}") from None
    doc = yamltext.loads(text, str(path))
    doc = _mapping(doc or {}, "unit test file", _FILE_FIELDS)
    base = os.path.dirname(str(path))
    rule_files: list[str] = []
    for pattern in _list(doc.get("rule_files"), "rule_files"):
        full = pattern if os.path.isabs(pattern) else os.path.join(base, str(pattern))
        matches = sorted(glob.glob(full))
        if not matches:
            print("  WARNING: no file match pattern", full, file=warn or sys.stderr)
        rule_files.extend(matches)
    interval = _duration(doc.get("evaluation_interval"), "evaluation_interval")
    interval = interval or DEFAULT_EVALUATION_INTERVAL_MS
    tests = tuple(
        _test_group(raw, interval, i) for i, raw in enumerate(_list(doc.get("tests"), "tests"))
    )
    return UnitTestFile(
        path=str(path),
        rule_files=tuple(rule_files),
        evaluation_interval_ms=interval,
        group_eval_order=tuple(map(str, _list(doc.get("group_eval_order"), "group_eval_order"))),
        tests=tests,
    )


def _test_group(raw: Any, default_interval_ms: int, index: int) -> UnitTestGroup:
    where = f"tests[{index}]"
    doc = _mapping(raw, where, _GROUP_FIELDS)
    series = tuple(
        InputSeries(**_strings(s, f"{where}.input_series[{i}]", ("series", "values")))
        for i, s in enumerate(_list(doc.get("input_series"), f"{where}.input_series"))
    )
    alerts = tuple(
        _alert_test(a, f"{where}.alert_rule_test[{i}]", doc.get("name") or "")
        for i, a in enumerate(_list(doc.get("alert_rule_test"), f"{where}.alert_rule_test"))
    )
    exprs = tuple(
        _expr_test(e, f"{where}.promql_expr_test[{i}]")
        for i, e in enumerate(_list(doc.get("promql_expr_test"), f"{where}.promql_expr_test"))
    )
    return UnitTestGroup(
        interval_ms=_duration(doc.get("interval"), f"{where}.interval") or default_interval_ms,
        input_series=series,
        alert_tests=alerts,
        expr_tests=exprs,
        external_labels=_string_map(doc.get("external_labels"), f"{where}.external_labels"),
        external_url=str(doc.get("external_url") or ""),
        name=str(doc.get("name") or ""),
    )


def _alert_test(raw: Any, where: str, group_name: str) -> AlertTest:
    doc = _mapping(raw, where, ("eval_time", "alertname", "exp_alerts"))
    eval_time = _duration(doc.get("eval_time"), f"{where}.eval_time")
    if not doc.get("alertname"):
        suffix = f" (in TestGroup {group_name})" if group_name else ""
        raise ConfigError(
            "an item under alert_rule_test misses required attribute alertname at eval_time "
            f"{model_duration(eval_time)}{suffix}"
        )
    exp = []
    for i, a in enumerate(_list(doc.get("exp_alerts"), f"{where}.exp_alerts")):
        item = _mapping(a, f"{where}.exp_alerts[{i}]", ("exp_labels", "exp_annotations"))
        exp.append(
            ExpAlert(
                labels=_string_map(item.get("exp_labels"), f"{where}.exp_labels"),
                annotations=_string_map(item.get("exp_annotations"), f"{where}.exp_annotations"),
            )
        )
    return AlertTest(eval_time_ms=eval_time, alertname=str(doc["alertname"]), exp_alerts=tuple(exp))


def _expr_test(raw: Any, where: str) -> ExprTest:
    doc = _mapping(raw, where, ("expr", "eval_time", "exp_samples"))
    samples = []
    for i, s in enumerate(_list(doc.get("exp_samples"), f"{where}.exp_samples")):
        item = _mapping(s, f"{where}.exp_samples[{i}]", ("labels", "value"))
        value = item.get("value", 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}.exp_samples[{i}].value: {value!r} is not a number")
        samples.append(ExpSample(labels=str(item.get("labels") or ""), value=float(value)))
    return ExprTest(
        expr=str(doc.get("expr") or ""),
        eval_time_ms=_duration(doc.get("eval_time"), f"{where}.eval_time"),
        exp_samples=tuple(samples),
    )


def _mapping(raw: Any, where: str, known: Sequence[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise ConfigError(f"{where}: field {unknown[0]} not found (known: {', '.join(known)})")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list, got {raw!r}")
    return raw


def _strings(raw: Any, where: str, known: Sequence[str]) -> dict[str, str]:
    doc = _mapping(raw, where, known)
    # as spelled, as promtool reads them: `values: 0x10` is the series "0, ten times"
    return {k: yamltext.text(doc, k) if k in doc else "" for k in known}


def _string_map(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    return yamltext.texts(raw)


def _duration(raw: Any, where: str) -> int:
    if raw is None:
        return 0
    try:
        return round(parse_duration(str(raw)) * 1000)
    except ValueError:
        raise ConfigError(f'{where}: not a valid duration string: "{raw}"') from None
