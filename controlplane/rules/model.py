"""Rules as loaded from Prometheus rule files: frozen values, parsed once (load.py).

Durations are int milliseconds, as everywhere in the control plane. Alert labels and
annotations are kept as written (templates), in file order; they are expanded per alert at
evaluation time (alerting.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEFAULT_INTERVAL_MS = 60_000  # Prometheus's global evaluation_interval default

Pairs = tuple[tuple[str, str], ...]


class RuleType(StrEnum):
    RECORDING = "recording"
    ALERTING = "alerting"


@dataclass(frozen=True, kw_only=True)
class RecordingRule:
    name: str  # the `record:` metric name
    expr: str
    labels: Pairs = ()
    line: int = 0  # where the rule starts in its file, for messages

    @property
    def type(self) -> RuleType:
        return RuleType.RECORDING


@dataclass(frozen=True, kw_only=True)
class AlertingRule:
    name: str  # the `alert:` name, which becomes the `alertname` label
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: Pairs = ()  # templates
    annotations: Pairs = ()  # templates
    line: int = 0

    @property
    def type(self) -> RuleType:
        return RuleType.ALERTING


Rule = RecordingRule | AlertingRule


@dataclass(frozen=True, kw_only=True)
class RuleGroup:
    name: str
    file: str
    rules: tuple[Rule, ...] = ()
    interval_ms: int | None = None  # None: the manager's default evaluation interval
    limit: int = 0  # 0: no limit on series (recording) or alerts (alerting) per rule

    @property
    def key(self) -> str:
        """Prometheus's group key: unique across files, stable across reloads."""
        return f"{self.file};{self.name}"

    def interval_or(self, default_ms: int) -> int:
        return self.interval_ms if self.interval_ms else default_ms
