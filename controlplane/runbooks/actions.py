"""The explicit registry of runbook actions and their parameters.

Load-time validation uses these specs: an unknown action or parameter, a missing required
parameter or a literal of the wrong type fails with the file and field named. The functions that
perform the actions live in `act.py`; this module only says what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from controlplane.errors import ParseError
from controlplane.model.times import parse_duration
from controlplane.promql.parse import parse_query


class ParamType(StrEnum):
    STRING = "string"
    INT = "int"
    DURATION = "duration"
    PROMQL = "promql"


class TargetKind(StrEnum):
    PROVIDER = "provider"  # (region, provider)
    REGION = "region"  # (region)
    WALLET = "wallet"  # (region): a region's wallet connector and retry queue
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    type: ParamType
    required: bool = True
    default: object = None
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True, kw_only=True)
class ActionSpec:
    name: str
    params: dict[str, ParamSpec]
    target: TargetKind
    mutating: bool  # calls the aggregator; refused in shadow mode and by the kill switch


_REGION = ParamSpec(type=ParamType.STRING)
_PROVIDER = ParamSpec(type=ParamType.STRING)

ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            name="provider.isolate",
            params={
                "region": _REGION,
                "provider": _PROVIDER,
                "reason": ParamSpec(type=ParamType.STRING, required=False, default=""),
            },
            target=TargetKind.PROVIDER,
            mutating=True,
        ),
        ActionSpec(
            name="provider.restore",
            params={
                "region": _REGION,
                "provider": _PROVIDER,
                "canary_percent": ParamSpec(
                    type=ParamType.INT, required=False, default=100, minimum=1, maximum=100
                ),
            },
            target=TargetKind.PROVIDER,
            mutating=True,
        ),
        ActionSpec(
            name="region.drain", params={"region": _REGION}, target=TargetKind.REGION, mutating=True
        ),
        ActionSpec(
            name="region.undrain",
            params={"region": _REGION},
            target=TargetKind.REGION,
            mutating=True,
        ),
        ActionSpec(
            name="wallet.replay_queue",
            params={
                "region": _REGION,
                "max_items": ParamSpec(
                    type=ParamType.INT, required=False, default=1000, minimum=1, maximum=100_000
                ),
            },
            target=TargetKind.WALLET,
            mutating=True,
        ),
        ActionSpec(
            name="notify",
            params={
                "message": ParamSpec(type=ParamType.STRING),
                "severity": ParamSpec(type=ParamType.STRING, required=False, default="info"),
            },
            target=TargetKind.NONE,
            mutating=False,
        ),
        ActionSpec(
            name="wait",
            params={"duration": ParamSpec(type=ParamType.DURATION)},
            target=TargetKind.NONE,
            mutating=False,
        ),
        ActionSpec(
            name="check",
            params={
                "expr": ParamSpec(type=ParamType.PROMQL),
                "within": ParamSpec(type=ParamType.DURATION, required=False, default="0s"),
            },
            target=TargetKind.NONE,
            mutating=False,
        ),
    )
}


def check_literal(spec: ParamSpec, value: object) -> str | None:
    """Why a literal (template-free) value does not fit its parameter, or None if it does."""
    if spec.type is ParamType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        if spec.minimum is not None and value < spec.minimum:
            return f"must be >= {spec.minimum}, got {value!r}"
        if spec.maximum is not None and value > spec.maximum:
            return f"must be <= {spec.maximum}, got {value!r}"
        return None
    if not isinstance(value, str):
        return f"must be a string, got {value!r}"
    if spec.type is ParamType.DURATION:
        try:
            parse_duration(value)
        except ValueError:
            return f"{value!r} is not a duration (e.g. 30s, 5m)"
    if spec.type is ParamType.PROMQL:
        try:
            parse_query(value)
        except (ValueError, ParseError) as exc:
            return f"invalid PromQL {value!r}: {exc}"
    return None
