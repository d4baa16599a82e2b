"""The routing tree, receivers and inhibit rules, read from YAML in Alertmanager's shape.

```yaml
route:
  receiver: default
  group_by: [alertname, region]      # or ['...'] to group by every label
  group_wait: 30s                    # defaults as Alertmanager: 30s, 5m, 4h
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="page"', 'region=~"eu|latam"']   # or legacy match / match_re
      receiver: oncall
      continue: true
receivers:
  - name: oncall
    webhook_configs: [{url: "https://pager.example/hook", send_resolved: true, max_alerts: 0}]
    log_configs: [{send_resolved: true}]      # this project's addition: a log line per notification
inhibit_rules:
  - {source_matchers: ['severity="page"'], target_matchers: ['severity="ticket"'], equal: [region]}
```

Children inherit every option they do not set (an empty `group_by`, an empty `receiver` and
a null timing count as not set, as in Alertmanager), except `mute_time_intervals` and
`active_time_intervals`, which name `time_intervals` (see timeintervals.py) and hold for their
own route only. An alert goes down the first matching child
(and on to later siblings while the matched child has `continue: true`); a node none of whose
children match handles the alert itself. Errors name the file and the field:
`routing.yml: route.routes[1].matchers[0]: bad matcher format: 'severity~page'`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controlplane.errors import ConfigError
from controlplane.model import yamltext
from controlplane.model.series import Labels, Matcher, MatchOp
from controlplane.model.times import parse_duration
from controlplane.notify.inhibit import InhibitRule
from controlplane.notify.matchers import (
    LABEL_NAME,
    matchers_string,
    matches,
    new_matcher,
    parse_matchers,
    sort_matchers,
)
from controlplane.notify.receivers import INTEGRATIONS, IntegrationParser, ReceiverConfig
from controlplane.notify.timeintervals import (
    Fail,
    TimeInterval,
    check_interval_names,
    parse_all_intervals,
)

GROUP_BY_ALL = "..."
_ROUTE_KEYS = frozenset(
    {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval"}
    | {"matchers", "match", "match_re", "continue", "routes"}
    | {"mute_time_intervals", "active_time_intervals"}
)
_INHIBIT_KEYS = frozenset(
    {"source_matchers", "target_matchers", "equal"}
    | {"source_match", "source_match_re", "target_match", "target_match_re"}
)
_TOP_KEYS = ("route", "receivers", "inhibit_rules", "time_intervals", "mute_time_intervals")


@dataclass(frozen=True, kw_only=True)
class RouteOptions:
    receiver: str
    group_by: tuple[str, ...] = ()
    group_by_all: bool = False
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    mute_time_intervals: tuple[str, ...] = ()  # this route's own: never inherited
    active_time_intervals: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Route:
    """One node. `key` is Alertmanager's route key (the prefix of group keys); `id` adds the
    position among siblings, so two siblings with the same matchers stay apart."""

    key: str
    id: str
    path: tuple[int, ...]  # child positions from the root: unique, unlike key and id
    matchers: tuple[Matcher, ...]
    options: RouteOptions
    continue_: bool = False
    routes: tuple[Route, ...] = ()

    def match(self, labels: Labels) -> list[Route]:
        """The nodes that handle an alert with these labels, in tree order."""
        if not matches(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            found.extend(hits)
            if hits and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Labels) -> Labels:
        if self.options.group_by_all:
            return labels
        wanted = set(self.options.group_by)
        return tuple((n, v) for n, v in labels if n in wanted)

    def walk(self) -> list[Route]:
        return [self, *(node for child in self.routes for node in child.walk())]


@dataclass(frozen=True, kw_only=True)
class RoutingConfig:
    route: Route
    receivers: Mapping[str, ReceiverConfig]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    source: str = "<routing>"
    time_intervals: Mapping[str, TimeInterval] = field(default_factory=dict)

    def time_muted(self, route: Route, now: datetime) -> bool:
        """Whether `route` sends nothing at `now`: inside one of its mute intervals, or
        outside all of its active ones."""
        within = [self.time_intervals[n].contains(now) for n in route.options.active_time_intervals]
        if within and not any(within):
            return True
        return any(self.time_intervals[n].contains(now) for n in route.options.mute_time_intervals)


@dataclass(frozen=True)
class _Where:
    source: str
    path: str

    def at(self, part: str | int) -> _Where:
        if isinstance(part, int):
            return _Where(self.source, f"{self.path}[{part}]")
        return _Where(self.source, f"{self.path}.{part}" if self.path else part)

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.path}: {message}")

    def fail(self, part: str, message: str) -> ConfigError:
        return self.at(part).error(message)


def load_routing(
    path: str | Path, *, integrations: Mapping[str, IntegrationParser] | None = None
) -> RoutingConfig:
    """Read and check a routing file; ConfigError names the file and the field."""
    data = yamltext.load(path, "routing file")
    return parse_routing(data, source=str(path), integrations=integrations)


def parse_routing(
    data: Any,
    *,
    source: str = "<routing>",
    integrations: Mapping[str, IntegrationParser] | None = None,
) -> RoutingConfig:
    top = _Where(source, "")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {data!r}")
    for key in data:
        if key not in _TOP_KEYS:
            raise top.at(str(key)).error(
                f"unknown or unsupported field (expected one of {list(_TOP_KEYS)})"
            )
    parsers = integrations or INTEGRATIONS
    receivers = _receivers(data.get("receivers"), top.at("receivers"), parsers)
    intervals = parse_all_intervals(data, lambda key: _fail_at(top.at(key)))
    if "route" not in data:
        raise top.at("route").error("missing")
    route = _root(data["route"], top.at("route"), receivers)
    used = [(n.key or "(root)", n.options.mute_time_intervals + n.options.active_time_intervals)
            for n in route.walk()]  # fmt: skip
    check_interval_names(used, intervals, _fail_at(top.at("route")))
    rules = _list(data.get("inhibit_rules") or [], top.at("inhibit_rules"))
    inhibit = tuple(_inhibit_rule(r, top.at("inhibit_rules").at(i)) for i, r in enumerate(rules))
    return RoutingConfig(
        route=route,
        receivers=receivers,
        inhibit_rules=inhibit,
        source=source,
        time_intervals=intervals,
    )


def _receivers(
    raw: Any, where: _Where, parsers: Mapping[str, IntegrationParser]
) -> dict[str, ReceiverConfig]:
    out: dict[str, ReceiverConfig] = {}
    for i, item in enumerate(_list(raw, where)):
        here = where.at(i)
        obj = _mapping(item, here)
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            raise here.at("name").error(f"{name!r} is not a receiver name")
        if name in out:
            raise here.at("name").error(f"duplicate receiver {name!r}")
        integrations = []
        for key, value in obj.items():
            if key == "name":
                continue
            parse = parsers.get(str(key))
            if parse is None:
                known = ["name", *parsers]
                raise here.at(str(key)).error(f"unknown or unsupported field (expected {known})")
            for j, conf in enumerate(_list(value or [], here.at(str(key)))):
                spot = here.at(str(key)).at(j)
                integrations.append(parse(_mapping(conf, spot), spot.fail))
        out[name] = ReceiverConfig(name=name, integrations=tuple(integrations))
    return out


def _root(raw: Any, where: _Where, receivers: Mapping[str, ReceiverConfig]) -> Route:
    obj = _mapping(raw, where)
    for key in ("matchers", "match", "match_re"):
        if obj.get(key):
            raise where.at(key).error("the root route must not have any matchers")
    if obj.get("continue"):
        raise where.at("continue").error("the root route cannot have continue")
    for key in ("mute_time_intervals", "active_time_intervals"):
        if obj.get(key):
            raise where.at(key).error(f"the root route cannot have {key}")
    if not obj.get("receiver"):
        raise where.at("receiver").error("the root route needs a receiver")
    return _route(obj, where, None, None, (), receivers)


def _route(
    obj: dict[str, Any],
    where: _Where,
    parent: RouteOptions | None,
    parent_key: str | None,
    path: tuple[int, ...],
    receivers: Mapping[str, ReceiverConfig],
) -> Route:
    for key in obj:
        if key not in _ROUTE_KEYS:
            expected = sorted(_ROUTE_KEYS)
            raise where.at(str(key)).error(f"unknown or unsupported field (expected {expected})")
    options = _options(obj, where, parent, receivers)
    matchers = sort_matchers(_route_matchers(obj, where))
    key = matchers_string(matchers)
    key = key if parent_key is None else f"{parent_key}/{key}"
    children = []
    for i, raw in enumerate(_list(obj.get("routes") or [], where.at("routes"))):
        here = where.at("routes").at(i)
        children.append(_route(_mapping(raw, here), here, options, key, (*path, i), receivers))
    cont = obj.get("continue") or False  # null is false, as in Alertmanager
    if not isinstance(cont, bool):
        raise where.at("continue").error(f"{cont!r} is not a boolean")
    return Route(
        key=key,
        id=key if not path else f"{key}/{path[-1]}",
        path=path,
        matchers=matchers,
        options=options,
        continue_=cont,
        routes=tuple(children),
    )


def _options(
    obj: dict[str, Any],
    where: _Where,
    parent: RouteOptions | None,
    receivers: Mapping[str, ReceiverConfig],
) -> RouteOptions:
    base = parent or RouteOptions(receiver="")
    receiver = obj.get("receiver") or base.receiver  # '' inherits, as in Alertmanager
    if not isinstance(receiver, str) or receiver not in receivers:
        raise where.at("receiver").error(f"undefined receiver {receiver!r}")
    group_by, group_by_all = base.group_by, base.group_by_all
    if obj.get("group_by"):  # [] inherits, as in Alertmanager
        group_by, group_by_all = _group_by(obj["group_by"], where.at("group_by"))
    timings = {}
    for name in ("group_wait", "group_interval", "repeat_interval"):
        value = getattr(base, name)
        if obj.get(name) is not None:
            value = _duration(obj[name], where.at(name))
            if name != "group_wait" and not value:
                raise where.at(name).error(f"{obj[name]!r}: {name} cannot be zero")
        timings[name] = value
    return RouteOptions(
        receiver=receiver,
        group_by=group_by,
        group_by_all=group_by_all,
        mute_time_intervals=_names(obj.get("mute_time_intervals"), where.at("mute_time_intervals")),
        active_time_intervals=_names(
            obj.get("active_time_intervals"), where.at("active_time_intervals")
        ),
        **timings,
    )


def _fail_at(where: _Where) -> Fail:
    return lambda part, message: ConfigError(f"{where.source}: {where.path}{part}: {message}")


def _names(raw: Any, where: _Where) -> tuple[str, ...]:
    names = _list(raw or [], where)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise where.at(i).error(f"{name!r} is not a time interval name")
    return tuple(names)


def _group_by(raw: Any, where: _Where) -> tuple[tuple[str, ...], bool]:
    names = _list(raw or [], where)
    if GROUP_BY_ALL in names:
        if len(names) > 1:
            raise where.error("cannot have '...' and other labels at the same time")
        return (), True
    seen: list[str] = []
    for i, name in enumerate(names):
        if not isinstance(name, str) or not LABEL_NAME.match(name):
            raise where.at(i).error(f"{name!r} is not a valid label name")
        if name in seen:
            raise where.at(i).error(f"duplicated label {name!r}")
        seen.append(name)
    return tuple(seen), False


def _route_matchers(obj: dict[str, Any], where: _Where) -> list[Matcher]:
    out: list[Matcher] = []
    for key, op in (("match", MatchOp.EQ), ("match_re", MatchOp.RE)):
        out.extend(_legacy(obj.get(key), where.at(key), op))
    out.extend(_matcher_lines(obj.get("matchers"), where.at("matchers")))
    return out


def _matcher_lines(raw: Any, where: _Where) -> list[Matcher]:
    out: list[Matcher] = []
    for i, line in enumerate(_list(raw or [], where)):
        if not isinstance(line, str):
            raise where.at(i).error(f"{line!r} is not a matcher string")
        try:
            out.extend(parse_matchers(line))
        except ValueError as exc:
            raise where.at(i).error(str(exc)) from None
    return out


def _legacy(raw: Any, where: _Where, op: MatchOp) -> list[Matcher]:
    out: list[Matcher] = []
    pairs = _mapping(raw or {}, where)
    for name, value in pairs.items():
        if not isinstance(name, str) or not LABEL_NAME.match(name):
            raise where.error(f"{name!r} is not a valid label name")
        if isinstance(value, dict | list):
            raise where.at(name).error(f"{value!r} is not a string")
        try:  # the value as spelled: `code: 010` matches "010", as in Alertmanager
            out.append(new_matcher(name, op, yamltext.text(pairs, name)))
        except ValueError as exc:
            raise where.at(name).error(str(exc)) from None
    return out


def _inhibit_rule(raw: Any, where: _Where) -> InhibitRule:
    obj = _mapping(raw, where)
    for key in obj:
        if key not in _INHIBIT_KEYS:
            raise where.at(str(key)).error(f"unknown field (expected {sorted(_INHIBIT_KEYS)})")
    sides: dict[str, tuple[Matcher, ...]] = {}
    for side in ("source", "target"):
        found = _legacy(obj.get(f"{side}_match"), where.at(f"{side}_match"), MatchOp.EQ)
        found += _legacy(obj.get(f"{side}_match_re"), where.at(f"{side}_match_re"), MatchOp.RE)
        found += _matcher_lines(obj.get(f"{side}_matchers"), where.at(f"{side}_matchers"))
        sides[side] = tuple(found)
    equal = _list(obj.get("equal") or [], where.at("equal"))
    for i, name in enumerate(equal):
        if not isinstance(name, str) or not LABEL_NAME.match(name):
            raise where.at("equal").at(i).error(f"{name!r} is not a valid label name")
    return InhibitRule(
        source_matchers=sides["source"], target_matchers=sides["target"], equal=tuple(equal)
    )


def _duration(raw: Any, where: _Where) -> timedelta:
    try:
        if isinstance(raw, str | int) and not isinstance(raw, bool):
            return timedelta(seconds=parse_duration(str(raw)))
    except ValueError:
        pass
    raise where.error(f"{raw!r} is not a duration")


def _mapping(raw: Any, where: _Where) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise where.error(f"{raw!r} is not a mapping")
    return raw


def _list(raw: Any, where: _Where) -> list[Any]:
    if not isinstance(raw, list):
        raise where.error(f"{raw!r} is not a list")
    return raw
