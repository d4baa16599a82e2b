"""A stand-in for PagerDuty's Events API v2 (`POST /v2/enqueue`), served on 127.0.0.1.

It checks events as PagerDuty documents them (a 32-character routing key, an event_action,
for a trigger a payload with summary, source and a known severity) and answers 202 with the
dedup_key, or 400 "Invalid event". Answers queued in `answers` come first, one per request:
(429, {"Retry-After": "7"}) to rate limit, (500, {}) to fail.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response, jsonify, request

SEVERITIES = ("critical", "error", "warning", "info")


def problems(event: Any) -> list[str]:
    if not isinstance(event, dict):
        return ["the body is not a JSON object"]
    found = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        found.append("'routing_key' must be a 32-character integration key")
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        found.append(f"'event_action' is invalid: {action!r}")
    dedup = event.get("dedup_key")
    if action != "trigger" and not dedup:
        found.append("'dedup_key' is required to acknowledge or resolve")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        found.append("'dedup_key' must be a string of at most 255 characters")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*found, "'payload' is missing"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) > 1024:
            found.append("'payload.summary' must be 1 to 1024 characters")
        if not payload.get("source"):
            found.append("'payload.source' is missing")
        if payload.get("severity") not in SEVERITIES:
            found.append(f"'payload.severity' is invalid: {payload.get('severity')!r}")
    return found


class EventsAPI:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.requests = 0
        self._lock = threading.Lock()
        self.app = Flask(__name__)
        self.app.add_url_rule("/v2/enqueue", view_func=self._enqueue, methods=["POST"])

    def _enqueue(self) -> tuple[Response, int, dict[str, str]]:
        with self._lock:
            self.requests += 1
            queued = self.answers.pop(0) if self.answers else None
        if queued is not None:
            status, headers = queued
            body = {"status": "throttle event" if status == 429 else "error", "message": "no"}
            return jsonify(body), status, headers
        event = request.get_json(force=True, silent=True)
        found = problems(event)
        if found:
            body = {"status": "invalid event", "message": "Event object is invalid"}
            return jsonify({**body, "errors": found}), 400, {}
        with self._lock:
            self.events.append(event)
        accepted = {"status": "success", "message": "Event processed"}
        return jsonify({**accepted, "dedup_key": event["dedup_key"]}), 202, {}
