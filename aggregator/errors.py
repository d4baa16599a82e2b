"""Exceptions of the aggregator package.

AggregatorError
 +-- ConfigError            a catalogue or setting that cannot be used (file and field named)
 +-- ApiError               an HTTP-facing error with a status code and an error code
 |    +-- BadRequest        400: malformed JSON, wrong types
 |    +-- Unauthorized      401: missing or wrong bearer token
 |    +-- NotFound          404: unknown provider, region, fault or route
 |    +-- Conflict          409/422: idempotency key reused with another request
 |    +-- Unprocessable     422: well-formed but invalid (unknown fault kind, bad magnitude)
 |    +-- Unavailable       503: the service cannot serve this now
 +-- WalletCallError        the operator wallet did not give a definite answer (timeout, 5xx)
"""

from __future__ import annotations


class AggregatorError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(AggregatorError):
    """A configuration value or file that cannot be used."""


class ApiError(AggregatorError):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra

    def body(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message, **self.extra}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 422
    code = "idempotency_key_reused"


class Unprocessable(ApiError):
    status = 422
    code = "invalid"


class Unavailable(ApiError):
    status = 503
    code = "unavailable"


class WalletCallError(AggregatorError):
    """The wallet gave no definite answer: the outcome of the call is unknown."""
