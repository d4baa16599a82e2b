"""Limits on what a client may send any aggregator role: the size of a request body and the
nesting of the JSON in it. Both answer JSON errors (413, 400) before anything else runs, so a
hostile body costs the role little and can never reach its state.

- `BodyLimit` wraps a role's whole WSGI app (outermost, in front of the fast routes), so the
  same check holds under waitress and granian alike. A declared Content-Length over the limit
  is answered 413 unread; a body without one (chunked) is read up to the limit and handed on
  with its length, so nothing behind it ever reads an unbounded stream.
- `parse_json` is the one way request JSON is parsed. `json.loads` recurses once per nesting
  level: a few thousand levels (`[[[[...`, 20 KB) raise RecursionError, which is no ValueError
  and escaped every handler as a 500; a few hundred parse, but leave a value that every later
  walk (repr in an error message, json.dumps) may trip on. No API here nests beyond two levels.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES

from aggregator.errors import BadRequest

MAX_BODY_BYTES = 1 << 20  # default request body limit of every role (--max-body-bytes)
MAX_JSON_DEPTH = 32  # arrays and objects inside one another, in any request body

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`raw` as JSON, or BadRequest: `malformed_json`, or `json_too_deep` past `max_depth`."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON body: {exc}", code="malformed_json") from exc
    # nesting needs brackets: a body with few of them (every real call) skips the walk
    if raw.count(b"[") + raw.count(b"{") > max_depth and depth_exceeds(value, max_depth):
        raise _too_deep(max_depth)
    return value


def _too_deep(max_depth: int) -> BadRequest:
    return BadRequest(
        f"JSON body nested deeper than {max_depth} arrays or objects", code="json_too_deep"
    )


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether arrays and objects nest more than `max_depth` deep in `value` (no recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class BodyLimit:
    """WSGI middleware: request bodies over `max_bytes` answer 413 JSON, unread."""

    def __init__(self, app: WsgiApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes!r}")
        self._app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared:
            if not declared.isdigit():
                return _answer(start_response, 400, "bad_content_length",
                               f"Content-Length {declared[:40]!r} is not a byte count")  # fmt: skip
            if int(declared) > self.max_bytes:
                return self._too_large(start_response, f"{int(declared)} bytes")
        elif environ.get("wsgi.input_terminated"):
            # no length (chunked): read one byte past the limit to know whether it is over
            body = environ["wsgi.input"].read(self.max_bytes + 1)
            if len(body) > self.max_bytes:
                return self._too_large(start_response, "a chunked body")
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self._app(environ, start_response)

    def _too_large(self, start_response: Callable[..., Any], what: str) -> list[bytes]:
        message = f"request body of {what} is over the limit of {self.max_bytes} bytes"
        return _answer(start_response, 413, "payload_too_large", message)


def _answer(
    start_response: Callable[..., Any], status: int, code: str, message: str
) -> list[bytes]:
    data = json.dumps({"error": code, "message": message}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
    return [data]
