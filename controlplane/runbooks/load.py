"""Runbook YAML -> typed Runbook, once, with every error naming the file and the field.

Checked at load time: the shape of every object, unknown fields, durations, the action registry
(unknown action or parameter, missing required parameter, literal types), the template forms,
$params references against the declared params, PromQL syntax of verify/require/check, and,
when the caller passes the alert names the rules define, that the trigger names one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from controlplane.errors import ConfigError, ParseError
from controlplane.model import yamltext
from controlplane.model.times import parse_duration
from controlplane.promql.parse import parse_query
from controlplane.runbooks import templates
from controlplane.runbooks.actions import ACTIONS, ParamType, check_literal
from controlplane.runbooks.model import (
    BlastRadius,
    Guards,
    Mode,
    Param,
    Precondition,
    Runbook,
    Step,
    Throttle,
    Trigger,
    Verify,
)

_TOP = {
    "name",
    "description",
    "trigger",
    "mode",
    "guards",
    "steps",
    "verify",
    "rollback",
    "on_resolved",
    "params",
    "approvers",
    "approval_timeout",
}


T = TypeVar("T")


class RunbookErrors(ConfigError):
    """Every error found in one runbook file, one per line (as `promtool check rules`)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = tuple(messages)


class _Errors:
    """The errors of one file so far: its sections (and each step) are checked independently,
    so one run reports them all rather than the first."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def take(self, parse: Callable[[], T], default: T) -> T:
        try:
            return parse()
        except ConfigError as exc:
            self.messages.append(str(exc))
            return default


class _At:
    """A position in one file, for error messages: `file: steps[1].with.provider: ...`."""

    def __init__(self, path: str, field: str = "") -> None:
        self.path, self.field = path, field

    def __truediv__(self, part: str | int) -> _At:
        sub = f"[{part}]" if isinstance(part, int) else (f".{part}" if self.field else part)
        return _At(self.path, self.field + sub)

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.field or '(document)'}: {message}")


def load_runbooks(
    directory: str | Path, known_alerts: Collection[str] | None = None
) -> list[Runbook]:
    runbooks = [load_runbook(p, known_alerts) for p in sorted(Path(directory).glob("*.y*ml"))]
    seen: dict[str, str] = {}
    for rb in runbooks:
        if rb.name in seen:
            raise ConfigError(f"{rb.path}: name: {rb.name!r} is also defined in {seen[rb.name]}")
        seen[rb.name] = rb.path
    return runbooks


def load_runbook(path: str | Path, known_alerts: Collection[str] | None = None) -> Runbook:
    at = _At(str(path))
    raw = yamltext.load(path, "runbook")
    doc, errs = _mapping(raw, at), _Errors()
    errs.take(lambda: _known(doc, _TOP, at), None)
    mode = errs.take(lambda: _mode(doc.get("mode", "auto"), at / "mode"), Mode.MANUAL)
    no_params: tuple[Param, ...] = ()
    params = errs.take(lambda: _params(doc.get("params", {}), at / "params"), no_params)
    declared = {p.name for p in params}

    def steps(key: str, required: bool = False) -> tuple[Step, ...]:
        return _steps(doc.get(key, []), at / key, declared, required=required, errs=errs)

    runbook = Runbook(
        name=errs.take(lambda: _name(doc, at), ""),
        description=str(doc.get("description", "")),
        path=str(path),
        mode=mode,
        trigger=errs.take(lambda: _trigger_for(doc, mode, at, known_alerts), None),
        guards=errs.take(lambda: _guards(doc.get("guards", {}), at / "guards", declared), Guards()),
        steps=steps("steps", required=True),
        verify=errs.take(lambda: _verify(doc.get("verify"), at / "verify", declared), None),
        rollback=steps("rollback"),
        on_resolved=steps("on_resolved"),
        params=params,
        approvers=errs.take(lambda: _approvers(doc.get("approvers", 1), at), 1),
        approval_timeout_s=errs.take(
            lambda: _duration(doc.get("approval_timeout", "15m"), at / "approval_timeout"), 900.0
        ),
    )
    if errs.messages:
        raise RunbookErrors(errs.messages)
    return runbook


def _name(doc: Mapping[str, Any], at: _At) -> str:
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise (at / "name").error(f"must be a non-empty string, got {name!r}")
    return name


def _approvers(raw: object, at: _At) -> int:
    if raw not in (1, 2):
        raise (at / "approvers").error(f"must be 1 or 2, got {raw!r}")
    return int(raw)


def _trigger_for(
    doc: Mapping[str, Any], mode: Mode, at: _At, known_alerts: Collection[str] | None
) -> Trigger | None:
    trigger = _trigger(doc.get("trigger"), at / "trigger", known_alerts)
    if trigger is None and mode is not Mode.MANUAL:
        raise (at / "trigger").error(f"required unless mode is manual (mode is {mode.value!r})")
    return trigger


def _mode(raw: object, at: _At) -> Mode:
    try:
        return Mode(str(raw))
    except ValueError:
        raise at.error(
            f"unknown mode {raw!r} (expected one of {[m.value for m in Mode]})"
        ) from None


def _trigger(raw: object, at: _At, known_alerts: Collection[str] | None) -> Trigger | None:
    if raw is None:
        return None
    obj = _mapping(raw, at)
    _known(obj, {"alert", "matchers"}, at)
    alert = obj.get("alert")
    if not isinstance(alert, str) or not alert:
        raise (at / "alert").error(f"must name an alert, got {alert!r}")
    if known_alerts is not None and alert not in known_alerts:
        raise (at / "alert").error(f"no rule defines alert {alert!r}")
    matchers = _mapping(obj.get("matchers", {}), at / "matchers")
    return Trigger(alert=alert, matchers=yamltext.texts(matchers))  # as spelled: 010 is "010"


def _guards(raw: object, at: _At, declared: set[str]) -> Guards:
    obj = _mapping(raw, at)
    _known(obj, {"cooldown", "max_concurrent", "throttle", "blast_radius", "require"}, at)
    throttle = None
    if "throttle" in obj:
        t = _mapping(obj["throttle"], at / "throttle")
        _known(t, {"max_runs", "window"}, at / "throttle")
        throttle = Throttle(
            max_runs=_int(t.get("max_runs"), at / "throttle" / "max_runs", 1),
            window_s=_duration(t.get("window"), at / "throttle" / "window"),
        )
    blast = None
    if "blast_radius" in obj:
        b = _mapping(obj["blast_radius"], at / "blast_radius")
        fields = {"max_isolated_providers", "max_isolated_fraction", "min_healthy_regions"}
        _known(b, fields, at / "blast_radius")
        fraction = b.get("max_isolated_fraction")
        if fraction is not None and (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not 0 < fraction <= 1
        ):
            raise (at / "blast_radius" / "max_isolated_fraction").error(
                f"must be a fraction in (0, 1], got {fraction!r}"
            )
        blast = BlastRadius(
            max_isolated_providers=_opt_int(b, "max_isolated_providers", at / "blast_radius"),
            max_isolated_fraction=None if fraction is None else float(fraction),
            min_healthy_regions=_opt_int(b, "min_healthy_regions", at / "blast_radius"),
        )
    require = []
    for i, item in enumerate(_list(obj.get("require", []), at / "require")):
        r = _mapping(item, at / "require" / i)
        _known(r, {"expr", "reason"}, at / "require" / i)
        expr = _promql(r.get("expr"), at / "require" / i / "expr", declared)
        require.append(Precondition(expr=expr, reason=str(r.get("reason", f"requires {expr}"))))
    return Guards(
        cooldown_s=_duration(obj.get("cooldown", "0s"), at / "cooldown"),
        max_concurrent=_int(obj.get("max_concurrent", 1), at / "max_concurrent", 1),
        throttle=throttle,
        blast_radius=blast,
        require=tuple(require),
    )


def _steps(
    raw: object, at: _At, declared: set[str], *, required: bool = False, errs: _Errors
) -> tuple[Step, ...]:
    no_items: list[Any] = []
    items = errs.take(lambda: _list(raw, at), no_items)
    if required and not items and isinstance(raw, list | None):
        errs.messages.append(str(at.error("must list at least one step")))
    steps: list[Step] = []
    ids: set[str] = set()
    for i, item in enumerate(items):
        try:
            steps.append(_step(item, at / i, ids, declared))
        except ConfigError as exc:
            errs.messages.append(str(exc))
    return tuple(steps)


def _step(item: object, at: _At, ids: set[str], declared: set[str]) -> Step:
    obj = _mapping(item, at)
    _known(obj, {"id", "action", "with"}, at)
    action = obj.get("action")
    spec = ACTIONS.get(str(action))
    if spec is None:
        raise (at / "action").error(f"unknown action {action!r} (known: {sorted(ACTIONS)})")
    step_id = str(obj.get("id", at.field.replace("[", "-").rstrip("]")))
    if step_id in ids:
        raise (at / "id").error(f"duplicate step id {step_id!r}")
    ids.add(step_id)
    params = _mapping(obj.get("with", {}), at / "with")
    _check_params(spec.name, params, at / "with", declared)
    return Step(id=step_id, action=spec.name, params=dict(params))


def _check_params(action: str, params: Mapping[str, Any], at: _At, declared: set[str]) -> None:
    spec = ACTIONS[action]
    for key, value in params.items():
        pspec = spec.params.get(key)
        if pspec is None:
            raise (at / key).error(
                f"unknown parameter {key!r} for {action} (known: {sorted(spec.params)})"
            )
        if isinstance(value, str) and "{{" in value:
            _templates(value, at / key, declared)
            if pspec.type is ParamType.PROMQL:
                _promql(value, at / key, declared)
            continue
        problem = check_literal(pspec, value)
        if problem:
            raise (at / key).error(problem)
    missing = [k for k, p in spec.params.items() if p.required and k not in params]
    if missing:
        raise at.error(f"{action} needs parameter {missing[0]!r}")


def _verify(raw: object, at: _At, declared: set[str]) -> Verify | None:
    if raw is None:
        return None
    obj = _mapping(raw, at)
    _known(obj, {"expr", "within"}, at)
    return Verify(
        expr=_promql(obj.get("expr"), at / "expr", declared),
        within_s=_duration(obj.get("within", "60s"), at / "within"),
    )


def _params(raw: object, at: _At) -> tuple[Param, ...]:
    obj = _mapping(raw, at)
    out = []
    for name, spec in obj.items():
        s = _mapping(spec if spec is not None else {}, at / str(name))
        _known(s, {"type", "default", "required"}, at / str(name))
        kind = s.get("type", "string")
        if kind not in ("string", "int", "duration"):
            raise (at / str(name) / "type").error(f"unknown type {kind!r}")
        out.append(
            Param(
                name=str(name),
                type=kind,
                default=s.get("default"),
                required=bool(s.get("required", False)),
            )
        )
    return tuple(out)


def _templates(text: str, at: _At, declared: set[str]) -> None:
    try:
        refs = templates.references(text)
    except ConfigError as exc:
        raise at.error(str(exc)) from None
    for ref in refs:
        if ref.namespace == "params" and ref.name not in declared:
            raise at.error(f"$params.{ref.name} is not declared under params")


def _promql(raw: object, at: _At, declared: set[str]) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise at.error(f"must be a PromQL expression, got {raw!r}")
    _templates(raw, at, declared)
    try:  # through the limits, before the binding: a file is input too
        parse_query(templates._BLOCK.sub("0", raw))
    except (ValueError, ParseError) as exc:
        raise at.error(f"invalid PromQL {raw!r}: {exc}") from None
    return raw


def _duration(raw: object, at: _At) -> float:
    try:
        return parse_duration(str(raw))
    except ValueError:
        raise at.error(f"{raw!r} is not a duration (e.g. 30s, 10m, 1h)") from None


def _int(raw: object, at: _At, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise at.error(f"must be an integer >= {minimum}, got {raw!r}")
    return raw


def _opt_int(obj: Mapping[str, Any], key: str, at: _At) -> int | None:
    return None if obj.get(key) is None else _int(obj[key], at / key, 0)


def _mapping(raw: object, at: _At) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise at.error(f"must be a mapping, got {type(raw).__name__}")
    return raw


def _list(raw: object, at: _At) -> list[Any]:
    if not isinstance(raw, list):
        raise at.error(f"must be a list, got {type(raw).__name__}")
    return raw


def _known(obj: Mapping[str, Any], allowed: set[str], at: _At) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise (at / unknown[0]).error(f"unknown field (allowed: {sorted(allowed)})")
