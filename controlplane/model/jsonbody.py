"""JSON from the network, read with a nesting limit.

Python's json module recurses once per level: a body of a few thousand `[` raises
RecursionError (no ValueError, so it escaped as a 500), and nesting is never meaningful in
what the control plane accepts (an Alertmanager webhook is four levels deep). The C parser
reads the body (a RecursionError is a refusal), then the depth of what it built is checked
without recursion: cheaper than scanning the bytes in Python.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class JSONBodyError(ValueError):
    """Not JSON, or nested deeper than the limit."""


def depth(value: Any, *, stop_at: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in `value` (a scalar is 0), counted up to stop_at + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if not isinstance(node, dict | list):
            continue
        deepest = max(deepest, level)
        if deepest > stop_at:
            break
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing (JSONBodyError) bodies nested deeper than `max_depth`."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JSONBodyError(f"JSON nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as exc:
        raise JSONBodyError(f"body is not UTF-8: {exc}") from None
    data = raw if isinstance(raw, bytes) else raw.encode()
    # fewer brackets than the limit cannot nest past it: most bodies skip the walk
    brackets = data.count(b"[") + data.count(b"{")
    if brackets > max_depth and depth(value, stop_at=max_depth) > max_depth:
        raise JSONBodyError(f"JSON nested deeper than {max_depth} levels")
    return value
