"""Go values as the template executor sees them, and the function type it calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controlplane.errors import ControlPlaneError
from controlplane.gotemplate import fmt as gofmt


class FuncError(ControlPlaneError):
    """Raised by a template function; becomes `error calling <name>: <message>`."""


@dataclass(frozen=True, kw_only=True)
class GoFunc:
    fn: Callable[..., Any]
    params: tuple[str, ...] = ()  # Go types: any, string, float64, int, *sample, queryResult
    variadic: str | None = None


@dataclass(frozen=True, kw_only=True)
class GoStruct:
    type_name: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def go_type(self) -> str:
        return self.type_name

    def go_repr(self) -> str:
        return "{" + " ".join(gofmt.format_value(v) for v in self.fields.values()) + "}"


class AnyMap(dict[str, Any]):
    """map[string]interface{}: a missing key is a nil interface, printed `<no value>`."""


MISSING = object()


def truth(value: Any) -> bool:
    if value is None or value is MISSING:
        return False
    if isinstance(value, bool | int | float):
        return value != 0
    if isinstance(value, str | Mapping | Sequence):
        return len(value) > 0
    return True
