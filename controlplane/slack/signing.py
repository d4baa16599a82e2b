"""Slack's request signature, checked over the raw body before anything is parsed.

Slack signs every request it sends: `X-Slack-Signature: v0=<hex>` is HMAC-SHA256, keyed by the
app's signing secret, of `v0:<X-Slack-Request-Timestamp>:<raw body>`. `slack_sdk`'s
SignatureVerifier checks it, and refuses a timestamp more than five minutes from our clock, so
a captured request cannot be replayed later. The body is read once, bounded, and only a
request that passes is parsed at all.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Request
from slack_sdk.signature import Clock, SignatureVerifier

WINDOW_S = 300  # slack_sdk's window: older (or future) timestamps are refused
MAX_BODY = 256 * 1024  # a block_actions payload carries the whole message it came from


class Refused(Exception):
    """A request that is not Slack's, answered with `status` and nothing else."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class RequestVerifier:
    def __init__(
        self,
        signing_secret: str,
        *,
        clock: Callable[[], float],
        max_body: int = MAX_BODY,
    ) -> None:
        self._verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))
        self._clock, self._max_body = clock, max_body

    def raw_body(self, request: Request) -> bytes:
        """The body of a request Slack signed in the last five minutes; Refused otherwise."""
        length = request.content_length
        if length is None:
            raise Refused(411, "length_required", "Slack requests carry a Content-Length")
        if length > self._max_body:
            raise Refused(413, "too_large", f"request body over {self._max_body} bytes")
        raw = request.get_data(cache=True, parse_form_data=False)
        if len(raw) > self._max_body:
            raise Refused(413, "too_large", f"request body over {self._max_body} bytes")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            raise Refused(401, "unsigned", "missing X-Slack-Signature or X-Slack-Request-Timestamp")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise Refused(401, "bad_timestamp", "X-Slack-Request-Timestamp is not a Unix time")
        if abs(self._clock() - int(timestamp)) > WINDOW_S:
            raise Refused(401, "stale_timestamp", "the request is older than five minutes")
        try:
            valid = self._verifier.is_valid(body=raw, timestamp=timestamp, signature=signature)
        except UnicodeDecodeError:
            valid = False
        if not valid:
            raise Refused(401, "bad_signature", "the request's signature does not match")
        return raw
