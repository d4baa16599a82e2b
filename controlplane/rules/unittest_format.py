"""promtool's renderings of unit-test failures, to the character, so that output (and scripts
reading it) is the same whichever tool ran the tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.gotemplate.fmt import format_float_e_shortest, go_quote
from controlplane.model.series import Labels

_MODEL_UNITS = (
    ("y", 365 * 86_400_000, True),
    ("w", 7 * 86_400_000, True),
    ("d", 86_400_000, False),
    ("h", 3_600_000, False),
    ("m", 60_000, False),
    ("s", 1000, False),
    ("ms", 1, False),
)


def model_duration(ms: int) -> str:
    """Prometheus's model.Duration.String(): `1h30m`, `0s`; years and weeks only when exact."""
    if ms == 0:
        return "0s"
    out = []
    for unit, size, exact in _MODEL_UNITS:
        if exact and ms % size:
            continue
        count, ms = divmod(ms, size)
        if count > 0:
            out.append(f"{count}{unit}")
    return "".join(out)


def go_duration(ms: int) -> str:
    """Go's time.Duration.String() of a whole number of ms: `0s`, `500ms`, `1m30s`, `1h0m0s`."""
    if ms == 0:
        return "0s"
    sign, ms = ("-" if ms < 0 else ""), abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".")
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def go_labels(labels: Labels | Sequence[tuple[str, str]]) -> str:
    """labels.Labels.String(): `{a="b", c="d"}`."""
    return "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in labels) + "}"


@dataclass(frozen=True, kw_only=True, order=True)
class LabelsAndAnnotations:
    labels: Labels
    annotations: tuple[tuple[str, str], ...]

    def render(self) -> str:
        return f"Labels:{go_labels(self.labels)}\nAnnotations:{go_labels(self.annotations)}"


@dataclass(frozen=True, kw_only=True)
class AlertDiff:
    expected: list[LabelsAndAnnotations]
    got: list[LabelsAndAnnotations]


def _indent(text: str, indent: str) -> str:
    return ("\n" + indent).join(text.split("\n"))


def _alerts(items: Sequence[LabelsAndAnnotations]) -> str:
    if not items:
        return "[]"
    parts = [f"{i}:" + _indent("\n" + item.render(), "  ") for i, item in enumerate(items)]
    return "[\n" + ",\n".join(parts) + "\n]"


def alert_failure(group_name: str, alertname: str, when: str, diff: AlertDiff) -> str:
    name = f"    name: {group_name},\n" if group_name else ""
    exp = _indent(_alerts(diff.expected), " " * 12)
    got = _indent(_alerts(diff.got), " " * 12)
    return (
        f"{name}    alertname: {alertname}, time: {when}, \n        exp:{exp}, \n        got:{got}"
    )


def _samples(samples: Sequence[tuple[Labels, float]]) -> str:
    if not samples:
        return "nil"
    return ", ".join(f"{go_labels(k)} {format_float_e_shortest(v, upper=True)}" for k, v in samples)


def expr_failure(
    expr: str,
    when: str,
    expected: Sequence[tuple[Labels, float]],
    got: Sequence[tuple[Labels, float]],
) -> str:
    return (
        f"    expr: {go_quote(expr)}, time: {when},\n"
        f"        exp: {_samples(expected)}\n"
        f"        got: {_samples(got)}"
    )


def expr_error(expr: str, when: str, error: str) -> str:
    return f"    expr: {go_quote(expr)}, time: {when}, err: {error}"


def rule_error(rule: str, when: str, error: str) -> str:
    return f"    rule: {rule}, time: {when}, err: {error}"
