"""Alertmanager's matcher syntax: `name=value`, `name!=value`, `name=~regex`, `name!~regex`,
values optionally double-quoted, several per line as `{a="1", b=~"x|y"}` or `a=1, b=2`.

Parsing follows Alertmanager 0.25's `labels.ParseMatchers`; regexes are fully anchored, as in
Alertmanager and Prometheus (the shared `controlplane.model.series.Matcher` anchors them).
A label an alert does not have matches as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from controlplane.model.regex import RegexError
from controlplane.model.series import Labels, Matcher, MatchOp
from controlplane.notify.alerts import go_quote

_MATCHER = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*\Z", re.DOTALL)
_OP_ORDER = {MatchOp.EQ: 0, MatchOp.NE: 1, MatchOp.RE: 2, MatchOp.NRE: 3}
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def new_matcher(name: str, op: MatchOp, value: str) -> Matcher:
    """A matcher, with its regex compiled once now so a bad one fails here (ValueError)."""
    matcher = Matcher(name=name, op=op, value=value)
    try:
        matcher.compiled()
    except RegexError as exc:
        raise ValueError(f"{value!r} is not a valid regex: {exc.reason}") from None
    return matcher


def parse_matcher(text: str) -> Matcher:
    """One matcher in Alertmanager's syntax; ValueError naming the text otherwise."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"bad matcher format: {text!r}")
    name, op, raw = found.groups()
    return new_matcher(name, MatchOp(op), _unquote(raw, text))


def _unquote(raw: str, text: str) -> str:
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i < len(body) - 1:
            nxt = body[i + 1]
            out.append("\n" if nxt == "n" else nxt if nxt in '"\\' else "\\" + nxt)
            i += 2
            continue
        if ch == '"':
            if not quoted or i < len(body) - 1:
                raise ValueError(f"matcher value contains unescaped double quote: {text!r}")
            quoted = False
        else:
            out.append(ch)
        i += 1
    if quoted:
        raise ValueError(f"matcher value contains unescaped double quote: {text!r}")
    return "".join(out)


def parse_matchers(text: str) -> list[Matcher]:
    """Comma-separated matchers, optionally in braces; commas inside quotes do not split."""
    body = text.strip().removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    current: list[str] = []
    inside = escaped = False
    for ch in body:
        if ch == "," and not inside:
            tokens.append("".join(current))
            current = []
            continue
        if ch == '"':
            inside = inside if escaped else not inside
            escaped = False
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        current.append(ch)
    last = "".join(current).strip()
    if last:
        tokens.append(last)
    return [parse_matcher(token) for token in tokens]


def matcher_from_object(obj: Mapping[str, Any]) -> Matcher:
    """Alertmanager's API v2 form: {name, value, isRegex, isEqual (default true)}."""
    name, value = obj.get("name"), obj.get("value")
    is_regex, is_equal = obj.get("isRegex", False), obj.get("isEqual", True)
    if not isinstance(name, str) or not _MATCHER.match(f"{name}=x"):
        raise ValueError(f"name: {name!r} is not a label name")
    if not isinstance(value, str):
        raise ValueError(f"value: {value!r} is not a string")
    if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
        raise ValueError("isRegex and isEqual must be booleans")
    ops = {(False, True): MatchOp.EQ, (False, False): MatchOp.NE}
    ops.update({(True, True): MatchOp.RE, (True, False): MatchOp.NRE})
    return new_matcher(name, ops[(is_regex, is_equal)], value)


def matcher_string(matcher: Matcher) -> str:
    """Alertmanager's `Matcher.String()`: `name=~"value"`."""
    return f"{matcher.name}{matcher.op.value}{go_quote(matcher.value)}"


def sort_matchers(matchers: Iterable[Matcher]) -> tuple[Matcher, ...]:
    """Alertmanager's order (name, value, then =, !=, =~, !~), which route keys are built on."""
    return tuple(sorted(matchers, key=lambda m: (m.name, m.value, _OP_ORDER[m.op])))


def matchers_string(matchers: Sequence[Matcher]) -> str:
    """Alertmanager's `Matchers.String()`: `{a="1",b=~"x"}`."""
    return "{" + ",".join(matcher_string(m) for m in matchers) + "}"


def matches(matchers: Sequence[Matcher], labels: Labels | Mapping[str, str]) -> bool:
    lookup = labels if isinstance(labels, Mapping) else dict(labels)
    return all(m.matches(lookup.get(m.name, "")) for m in matchers)


def matches_empty(matcher: Matcher) -> bool:
    return matcher.matches("")
