"""Rule templates as Prometheus expands them: alert labels and annotations.

Every text gets Prometheus's convenience definitions in front (`$labels`, `$externalLabels`,
`$externalURL`, `$value`) and runs with Prometheus's functions (humanize*, printf, title, query,
reReplaceAll, ...) over the alert's data (`.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`).
Formatting is Prometheus's to the character: humanize(1234567) = "1.235M", humanizeDuration(90)
= "1m 30s". `check` is the load-time parse (unknown function, undefined variable, bad syntax);
`expand_or_error` is what an alert shows, `<error expanding template: ...>` when it fails.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from controlplane.gotemplate.builtins import BUILTINS
from controlplane.gotemplate.execute import TemplateExecError, execute
from controlplane.gotemplate.parse import Template, TemplateParseError, parse
from controlplane.gotemplate.values import FuncError, GoFunc, GoStruct
from controlplane.promql.results import InstantSample
from controlplane.rules.tmplfuncs import PROMETHEUS_FUNCTIONS

__all__ = [
    "TemplateContext",
    "TemplateExecError",
    "TemplateParseError",
    "check",
    "expand",
    "expand_or_error",
]

DEFS = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)
ALERT_DATA_TYPE = (
    "struct { Labels map[string]string; ExternalLabels map[string]string; "
    "ExternalURL string; Value float64 }"
)
SAMPLE_TYPE = "*template.sample"

QueryFunc = Callable[[str, int], Sequence[InstantSample]]
"""(expr, time in ms) -> the instant vector, as a rule's query sees it (a scalar is one sample
with no labels)."""


@dataclass(frozen=True, kw_only=True)
class TemplateContext:
    """The data one alert's templates see, and what `query` runs against."""

    labels: Mapping[str, str] = field(default_factory=dict)
    value: float = 0.0
    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    t_ms: int = 0
    query: QueryFunc | None = None


def check(text: str, name: str) -> None:
    """Parse as Prometheus does when it loads a rule; TemplateParseError carries Go's message."""
    _compile(DEFS + text, name)


def expand(text: str, name: str, ctx: TemplateContext) -> str:
    tmpl = _compile(DEFS + text, name)
    data = GoStruct(
        type_name=ALERT_DATA_TYPE,
        fields={
            "Labels": dict(ctx.labels),
            "ExternalLabels": dict(ctx.external_labels),
            "ExternalURL": ctx.external_url,
            "Value": float(ctx.value),
        },
    )
    return execute(tmpl, data, _functions(ctx))


def expand_or_error(text: str, name: str, ctx: TemplateContext) -> str:
    """What the alert carries: the expansion, or Prometheus's in-band error text."""
    try:
        return expand(text, name, ctx)
    except TemplateParseError as exc:
        return f"<error expanding template: error parsing template {name}: {exc}>"
    except TemplateExecError as exc:
        return f"<error expanding template: error executing template {name}: {exc}>"


@functools.lru_cache(maxsize=4096)
def _compile(text: str, name: str) -> Template:
    return parse(text, name, _FUNCTION_NAMES)


# --- Prometheus's functions -------------------------------------------------------------------


def _sample(s: InstantSample) -> GoStruct:
    return GoStruct(type_name=SAMPLE_TYPE, fields={"Labels": dict(s.labels), "Value": s.value})


def _query(ctx: TemplateContext, expr: str) -> list[GoStruct]:
    if ctx.query is None:
        raise FuncError("no query engine available")
    try:
        return [_sample(s) for s in ctx.query(expr, ctx.t_ms)]
    except Exception as exc:  # the engine's error becomes the template's, as in Prometheus
        raise FuncError(str(exc)) from exc


def _functions(ctx: TemplateContext) -> dict[str, GoFunc]:
    url = ctx.external_url
    funcs = dict(BUILTINS)
    funcs.update(PROMETHEUS_FUNCTIONS)
    funcs["query"] = GoFunc(fn=lambda q: _query(ctx, q), params=("string",))
    funcs["pathPrefix"] = GoFunc(fn=lambda: urllib.parse.urlsplit(url).path)
    funcs["externalURL"] = GoFunc(fn=lambda: url)
    return funcs


_FUNCTION_NAMES = (
    frozenset(BUILTINS) | frozenset(PROMETHEUS_FUNCTIONS) | {"query", "pathPrefix", "externalURL"}
)
