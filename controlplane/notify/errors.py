"""Exceptions of the notification half (routing, dispatch, silences, the HTTP surface).

ControlPlaneError                       (controlplane.errors)
 +-- ConfigError                        bad routing YAML: file and field named (controlplane.errors)
 +-- NotifyError                        a notifier could not deliver; `retryable` says if trying
 |    |                                 again may help (5xx, timeout) or not (4xx)
 |    +-- RetryAfter                    the receiver asked to wait (HTTP 429 Retry-After)
 +-- SilenceError                       a silence that cannot be created or changed
 |    +-- SilenceNotFound               no silence with that id
 |    +-- SilenceExpired                expiring a silence that has already ended
 +-- RequestError                       an HTTP-facing refusal with a status and an error code
"""

from __future__ import annotations

from controlplane.errors import ControlPlaneError


class NotifyError(ControlPlaneError):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class RetryAfter(NotifyError):
    """The receiver is rate limiting: try again after `seconds` (Slack's and PagerDuty's 429)."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message, retryable=True)
        self.seconds = seconds


class SilenceError(ControlPlaneError):
    pass


class SilenceNotFound(SilenceError):
    pass


class SilenceExpired(SilenceError):
    pass


class RequestError(ControlPlaneError):
    """Answered as `{"error": code, "message": ...}` with `status`; `field` names the culprit."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, str]:
        out = {"error": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out
