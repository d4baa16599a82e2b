"""Turn a wallet call's JSON body into a checked request, or reject it with the Hub88 status
that names what is wrong (RS_ERROR_WRONG_SYNTAX: not JSON, nested too deep, not an object, a
field missing or empty; RS_ERROR_WRONG_TYPES: a field of the wrong type, an amount that is not
a non-negative integer). A rejected call never reaches the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aggregator.errors import BadRequest
from aggregator.limits import parse_json
from aggregator.wallet.rules import Kind, Status, TxRequest

MAX_TEXT = 128  # the ledger's column width for ids
MAX_AMOUNT = 10**15  # minor units; keeps every sum far inside a 64-bit integer


class InvalidCall(BadRequest):
    """A malformed wallet call, answered HTTP 400 with `rs_status`."""

    def __init__(self, message: str, rs_status: Status, body: dict[str, Any] | None) -> None:
        super().__init__(message, code=rs_status.value)
        self.rs_status = rs_status
        self.echo = body or {}


@dataclass(frozen=True, kw_only=True)
class BalanceRequest:
    user: str
    token: str
    currency: str | None


def parse_object(raw: bytes) -> dict[str, Any]:
    try:
        value = parse_json(raw)
    except BadRequest as exc:  # not JSON, or nested too deep to be a wallet call
        raise InvalidCall(f"body is not a wallet call: {exc}", Status.WRONG_SYNTAX, None) from exc
    if not isinstance(value, dict):
        raise InvalidCall(
            f"body must be a JSON object, got {type(value).__name__}", Status.WRONG_SYNTAX, None
        )
    return value


def transaction(kind: Kind, body: dict[str, Any]) -> TxRequest:
    _optional(body, "request_uuid", str)
    _optional(body, "round_closed", bool)
    return TxRequest(
        kind=kind,
        transaction_uuid=_text(body, "transaction_uuid"),
        user=_text(body, "user"),
        round=_text(body, "round"),
        amount=_amount(body),
        currency=_text(body, "currency"),
        reference=(None if kind is Kind.BET else _text(body, "reference_transaction_uuid")),
        game_code=_optional(body, "game_code", str),
    )


def balance(body: dict[str, Any]) -> BalanceRequest:
    _optional(body, "request_uuid", str)
    return BalanceRequest(
        user=_text(body, "user"),
        token=_text(body, "token"),
        currency=_optional(body, "currency", str),
    )


def token_of(body: dict[str, Any]) -> str:
    return _text(body, "token")


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if value is None:
        raise InvalidCall(f"missing field {field!r}", Status.WRONG_SYNTAX, body)
    if not isinstance(value, str):
        raise InvalidCall(f"{field} must be a string, got {value!r}", Status.WRONG_TYPES, body)
    if not value or len(value) > MAX_TEXT:
        raise InvalidCall(
            f"{field} must be 1..{MAX_TEXT} characters, got {value[:40]!r}",
            Status.WRONG_SYNTAX,
            body,
        )
    return value


def _amount(body: dict[str, Any]) -> int:
    if "amount" not in body or body["amount"] is None:
        raise InvalidCall("missing field 'amount'", Status.WRONG_SYNTAX, body)
    value = body["amount"]
    # bool is an int in Python and 1.0 is a float in JSON: both are refused, money is integer
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
        raise InvalidCall(
            f"amount must be an integer of minor units in [0, {MAX_AMOUNT}], got {value!r}",
            Status.WRONG_TYPES,
            body,
        )
    return value


def _optional(body: dict[str, Any], field: str, kind: type) -> Any:
    value = body.get(field)
    if value is not None and not isinstance(value, kind):
        raise InvalidCall(
            f"{field} must be a {kind.__name__}, got {value!r}", Status.WRONG_TYPES, body
        )
    return value
