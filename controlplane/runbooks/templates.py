"""The only template forms runbooks allow: {{ $labels.NAME }}, {{ $value }}, {{ $params.NAME }}.

Anything else is a load error, so a runbook can never run code or reach data it was not given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from controlplane.errors import ConfigError

_BLOCK = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FORM = re.compile(
    r"^\s*\$(?:(?P<ns>labels|params)\.(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)|(?P<value>value))\s*$"
)


@dataclass(frozen=True, kw_only=True)
class Reference:
    namespace: str  # labels | params | value
    name: str = ""


def references(text: str) -> list[Reference]:
    """Every template reference in `text`; ConfigError for a form outside the allowed ones."""
    refs = []
    for block in _BLOCK.finditer(text):
        match = _FORM.match(block.group(1))
        if match is None:
            raise ConfigError(
                f"template {block.group(0)!r} is not allowed "
                "(only {{ $labels.NAME }}, {{ $value }}, {{ $params.NAME }})"
            )
        if match.group("value"):
            refs.append(Reference(namespace="value"))
        else:
            refs.append(Reference(namespace=match.group("ns"), name=match.group("name")))
    if "{{" in _BLOCK.sub("", text) or "}}" in _BLOCK.sub("", text):
        raise ConfigError(f"unbalanced template braces in {text!r}")
    return refs


@dataclass(frozen=True, kw_only=True)
class Context:
    labels: Mapping[str, str]
    value: float | None = None
    params: Mapping[str, object] | None = None


def render(text: str, ctx: Context) -> str:
    """Fill the references; a label or param the context lacks renders as an error, not ''."""

    def fill(block: re.Match[str]) -> str:
        match = _FORM.match(block.group(1))
        if match is None:  # load-time validation makes this unreachable for loaded runbooks
            raise ConfigError(f"template {block.group(0)!r} is not allowed")
        if match.group("value"):
            return "" if ctx.value is None else _number(ctx.value)
        ns, name = match.group("ns"), match.group("name")
        source: Mapping[str, object] = ctx.labels if ns == "labels" else (ctx.params or {})
        if name not in source:
            raise ConfigError(f"${ns}.{name} is not set (have {sorted(source)})")
        return str(source[name])

    return _BLOCK.sub(fill, text)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
