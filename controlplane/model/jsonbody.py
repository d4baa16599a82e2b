"""JSON from the network, read with a nesting limit.

Python's json module recurses once per level: a body of a few thousand `[` raises
RecursionError (no ValueError, so it escaped as a 500), and nesting is never meaningful in
what the control plane accepts (an Alertmanager webhook is four levels deep). The depth is
counted in one linear pass before the parser runs.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
_OPEN, _CLOSE, _QUOTE, _ESCAPE = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


class JSONBodyError(ValueError):
    """Not JSON, or nested deeper than the limit."""


def nesting_depth(raw: bytes, *, stop_at: int = MAX_DEPTH) -> int:
    """The deepest array/object nesting of `raw` (strings skipped), counted up to `stop_at`+1."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _ESCAPE:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_at:
                    return deepest
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing (JSONBodyError) bodies nested deeper than `max_depth`."""
    data = raw.encode() if isinstance(raw, str) else raw
    # fewer brackets than the limit cannot nest past it: most bodies skip the byte loop
    brackets = data.count(b"[") + data.count(b"{")
    if brackets > max_depth and nesting_depth(data, stop_at=max_depth) > max_depth:
        raise JSONBodyError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except RecursionError:  # a max_depth set above what the interpreter's stack allows
        raise JSONBodyError(f"JSON nested too deep to read (limit {max_depth})") from None
    except UnicodeDecodeError as exc:
        raise JSONBodyError(f"body is not UTF-8: {exc}") from None
