"""SLO spec files: one YAML per service, parsed once into typed objects.

    version: 1
    service: launches
    labels: {team: aggregator}            # added to every generated series and alert
    slos:
      - name: launch-success
        objective: 99.5                   # percent of good events over the window
        window: 30d                       # default 30d
        by: [region]                      # one SLI per region
        sli:                              # {{.window}} is replaced by each window
          error_query: sum by (region) (rate(launches_total{outcome="failed"}[{{.window}}]))
          total_query: sum by (region) (rate(launches_total[{{.window}}]))
          # or good_query + total_query, or error_ratio_query alone
        min_events: 100                   # per hour; a quieter SLI neither pages nor tickets
        alerting:
          name: LaunchSuccessBudgetBurn
          labels: {}
          annotations: {summary: ...}
          page: {severity: page}          # labels of the page alert; false disables it
          ticket: {severity: ticket}

Errors name the file, the SLO and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import promql_parser

from controlplane.errors import ConfigError, ParseError
from controlplane.model import yamltext
from controlplane.promql.parse import parse_query

WINDOW_PLACEHOLDER = "{{.window}}"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ALERT = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True, kw_only=True)
class SLI:
    error_query: str = ""
    good_query: str = ""
    total_query: str = ""
    error_ratio_query: str = ""

    def error_ratio(self, window: str) -> str:
        """The PromQL error ratio over one window."""

        def fill(q: str) -> str:
            return q.replace(WINDOW_PLACEHOLDER, window)

        if self.error_ratio_query:
            return f"({fill(self.error_ratio_query)})"
        if self.error_query:
            return f"({fill(self.error_query)})\n/\n({fill(self.total_query)})"
        return f"1 - (\n  ({fill(self.good_query)})\n  /\n  ({fill(self.total_query)})\n)"

    def total_rate(self, window: str) -> str | None:
        return self.total_query.replace(WINDOW_PLACEHOLDER, window) if self.total_query else None


@dataclass(frozen=True, kw_only=True)
class Alerting:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    page: Mapping[str, str] | None = field(default_factory=lambda: {"severity": "page"})
    ticket: Mapping[str, str] | None = field(default_factory=lambda: {"severity": "ticket"})


@dataclass(frozen=True, kw_only=True)
class SLO:
    service: str
    name: str
    description: str
    objective: float  # percent
    window: timedelta
    by: tuple[str, ...]
    sli: SLI
    min_events: float
    labels: Mapping[str, str]
    alerting: Alerting

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective / 100, 12)


@dataclass(frozen=True, kw_only=True)
class SLOSpec:
    path: str
    service: str
    slos: tuple[SLO, ...]


class _Where:
    """Builds error messages that name the file, the SLO and the field."""

    def __init__(self, path: str, slo: str = "") -> None:
        self.path, self.slo = path, slo

    def error(self, fld: str, message: str) -> ConfigError:
        where = f"{self.path}: slo {self.slo!r}: {fld}" if self.slo else f"{self.path}: {fld}"
        return ConfigError(f"{where}: {message}")


def load_specs(directory: str | Path) -> list[SLOSpec]:
    paths = sorted(Path(directory).glob("*.y*ml"))
    specs = [load_spec(p) for p in paths]
    seen: dict[str, str] = {}
    for spec in specs:
        for slo in spec.slos:
            if slo.id in seen:
                raise ConfigError(
                    f"{spec.path}: slo {slo.name!r}: id {slo.id!r} is also in {seen[slo.id]}"
                )
            seen[slo.id] = spec.path
    return specs


def load_spec(path: str | Path) -> SLOSpec:
    where = _Where(str(path))
    raw = yamltext.load(path, "SLO spec")
    doc = _mapping(raw, where, "(document)")
    _known(doc, {"version", "service", "labels", "slos"}, where, "")
    if doc.get("version", 1) != 1:
        raise where.error("version", f"unsupported version {doc.get('version')!r} (expected 1)")
    service = _name(doc.get("service"), where, "service")
    labels = _labels(doc.get("labels", {}), where, "labels")
    items = doc.get("slos")
    if not isinstance(items, list) or not items:
        raise where.error("slos", "must be a non-empty list")
    slos = tuple(_slo(item, i, service, labels, str(path)) for i, item in enumerate(items))
    names = [s.name for s in slos]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise where.error("slos", f"duplicate SLO name {dup!r}")
    return SLOSpec(path=str(path), service=service, slos=slos)


def _slo(item: object, index: int, service: str, labels: Mapping[str, str], path: str) -> SLO:
    where = _Where(path)
    obj = _mapping(item, where, f"slos[{index}]")
    name = _name(obj.get("name"), where, f"slos[{index}].name")
    where = _Where(path, name)
    _known(
        obj,
        {
            "name",
            "description",
            "objective",
            "window",
            "by",
            "sli",
            "min_events",
            "labels",
            "alerting",
        },
        where,
        "",
    )
    objective = obj.get("objective")
    if (
        isinstance(objective, bool)
        or not isinstance(objective, int | float)
        or not 0 < objective < 100
    ):
        raise where.error("objective", f"must be a percentage in (0, 100), got {objective!r}")
    by = obj.get("by", [])
    if not isinstance(by, list) or not all(isinstance(b, str) and _LABEL.match(b) for b in by):
        raise where.error("by", f"must be a list of label names, got {by!r}")
    min_events = obj.get("min_events", 0)
    if isinstance(min_events, bool) or not isinstance(min_events, int | float) or min_events < 0:
        raise where.error("min_events", f"must be a number >= 0, got {min_events!r}")
    sli = _sli(obj.get("sli"), where)
    if min_events and not sli.total_query:
        raise where.error("min_events", "needs sli.total_query to count events")
    return SLO(
        service=service,
        name=name,
        description=str(obj.get("description", "")),
        objective=float(objective),
        window=_duration(obj.get("window", "30d"), where, "window"),
        by=tuple(by),
        sli=sli,
        min_events=float(min_events),
        labels={**labels, **_labels(obj.get("labels", {}), where, "labels")},
        alerting=_alerting(obj.get("alerting", {}), name, where),
    )


def _sli(raw: object, where: _Where) -> SLI:
    obj = _mapping(raw, where, "sli")
    fields = {"error_query", "good_query", "total_query", "error_ratio_query"}
    _known(obj, fields, where, "sli.")
    for key in fields & obj.keys():
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise where.error(f"sli.{key}", "must be a non-empty PromQL string")
        _check_promql(obj[key], where, f"sli.{key}")
    given = fields & obj.keys()
    valid = (
        {"error_query", "total_query"},
        {"good_query", "total_query"},
        {"error_ratio_query"},
        {"error_ratio_query", "total_query"},
    )
    if given not in valid:
        raise where.error(
            "sli",
            "give error_query + total_query, good_query + total_query, "
            f"or error_ratio_query (optionally with total_query); got {sorted(given)}",
        )
    return SLI(**{k: obj[k].strip() for k in given})


def _alerting(raw: object, slo_name: str, where: _Where) -> Alerting:
    obj = _mapping(raw, where, "alerting")
    _known(obj, {"name", "labels", "annotations", "page", "ticket"}, where, "alerting.")
    default = "".join(part.title() for part in slo_name.split("-")) + "BudgetBurn"
    name = obj.get("name", default)
    if not isinstance(name, str) or not _ALERT.match(name):
        raise where.error("alerting.name", f"not a valid alert name: {name!r}")
    severities: dict[str, Mapping[str, str] | None] = {}
    for sev in ("page", "ticket"):
        value = obj.get(sev, {"severity": sev})
        severities[sev] = None if value is False else _labels(value, where, f"alerting.{sev}")
    return Alerting(
        name=name,
        labels=_labels(obj.get("labels", {}), where, "alerting.labels"),
        annotations=_labels(
            obj.get("annotations", {}), where, "alerting.annotations", any_key=True
        ),
        page=severities["page"],
        ticket=severities["ticket"],
    )


def _check_promql(query: str, where: _Where, fld: str) -> None:
    try:
        parse_query(query.replace(WINDOW_PLACEHOLDER, "5m"))
    except (ValueError, ParseError) as exc:
        raise where.error(fld, f"invalid PromQL {query!r}: {exc}") from exc


def _mapping(raw: object, where: _Where, fld: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise where.error(fld, f"must be a mapping, got {type(raw).__name__}")
    return raw


def _known(obj: Mapping[str, Any], allowed: set[str], where: _Where, prefix: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise where.error(f"{prefix}{unknown[0]}", f"unknown field (allowed: {sorted(allowed)})")


def _name(raw: object, where: _Where, fld: str) -> str:
    if not isinstance(raw, str) or not _NAME.match(raw):
        raise where.error(fld, f"must be lowercase letters, digits and dashes, got {raw!r}")
    return raw


def _labels(raw: object, where: _Where, fld: str, *, any_key: bool = False) -> dict[str, str]:
    obj = _mapping(raw, where, fld)
    for key, value in obj.items():
        if not isinstance(key, str) or not (any_key or _LABEL.match(key)):
            raise where.error(f"{fld}.{key}", "not a valid label name")
        if isinstance(value, dict | list):
            raise where.error(f"{fld}.{key}", f"must be a string, got {value!r}")
    return yamltext.texts(obj)  # as spelled: `code: 010` is "010"


def _duration(raw: object, where: _Where, fld: str) -> timedelta:
    try:
        value = promql_parser.parse_duration(str(raw))
    except ValueError as exc:
        raise where.error(fld, f"{raw!r} is not a duration (e.g. 30d, 4w)") from exc
    if value <= timedelta(0):
        raise where.error(fld, f"must be positive, got {raw!r}")
    return value
