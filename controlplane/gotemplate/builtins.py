"""text/template's builtin functions (and, or, not, len, index, slice, print*, html, js,
urlquery, eq, ne, lt, le, gt, ge, call) with Go's comparison rules and error texts."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from controlplane.gotemplate import fmt as gofmt
from controlplane.gotemplate.values import AnyMap, FuncError, GoFunc, truth


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise FuncError("invalid type for comparison")


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    for b in others:
        if a is None or b is None:
            if a is b:
                return True
            continue
        if _kind(a) != _kind(b):
            raise FuncError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if "bool" in (ka, kb):
        raise FuncError("invalid type for comparison")
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    return bool(a < b)


def _len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, Mapping | list | tuple):
        return len(value)
    raise FuncError(f"len of type {gofmt.go_type_name(value)}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, Mapping):
            if not isinstance(key, str):
                raise FuncError(f"value has type {gofmt.go_type_name(key)}; should be string")
            item = item.get(key, None if isinstance(item, AnyMap) else "")
        elif isinstance(item, list | tuple | str):
            if not isinstance(key, int):
                raise FuncError(f"cannot index slice/array with type {gofmt.go_type_name(key)}")
            if not 0 <= key < len(item):
                raise FuncError(f"index out of range: {key}")
            item = item[key]
        elif item is None:
            raise FuncError("index of untyped nil")
        else:
            raise FuncError(f"can't index item of type {gofmt.go_type_name(item)}")
    return item


def _slice(item: Any, *idx: int) -> Any:
    if not isinstance(item, str | list):
        raise FuncError(f"can't slice item of type {gofmt.go_type_name(item)}")
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise FuncError(f"index out of range: {hi}")
    return item[lo:hi]


def _escape_args(args: Sequence[Any]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return gofmt.sprint(args)


def _html(*args: Any) -> str:
    text = html.escape(_escape_args(args), quote=False)
    return text.replace('"', "&#34;").replace("'", "&#39;").replace("\x00", "\ufffd")


_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def _js(*args: Any) -> str:
    out = []
    for ch in _escape_args(args):
        if ch in _JS:
            out.append(_JS[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _not_implemented_call(*args: Any) -> Any:
    raise FuncError("call of nil")


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc(fn=lambda *a: a, variadic="any"),  # handled by the executor (short circuit)
    "or": GoFunc(fn=lambda *a: a, variadic="any"),
    "not": GoFunc(fn=lambda v: not truth(v), params=("any",)),
    "len": GoFunc(fn=_len, params=("any",)),
    "index": GoFunc(fn=_index, params=("any",), variadic="any"),
    "slice": GoFunc(fn=_slice, params=("any",), variadic="int"),
    "print": GoFunc(fn=lambda *a: gofmt.sprint(a), variadic="any"),
    "println": GoFunc(fn=lambda *a: gofmt.sprintln(a), variadic="any"),
    "printf": GoFunc(fn=lambda f, *a: gofmt.sprintf(f, a), params=("string",), variadic="any"),
    "html": GoFunc(fn=_html, variadic="any"),
    "js": GoFunc(fn=_js, variadic="any"),
    "urlquery": GoFunc(
        fn=lambda *a: urllib.parse.quote_plus(_escape_args(a), safe="-_.~"), variadic="any"
    ),
    "eq": GoFunc(fn=_eq, params=("any",), variadic="any"),
    "ne": GoFunc(fn=lambda a, b: not _eq(a, b), params=("any", "any")),
    "lt": GoFunc(fn=_lt, params=("any", "any")),
    "le": GoFunc(fn=lambda a, b: _lt(a, b) or _eq(a, b), params=("any", "any")),
    "gt": GoFunc(fn=lambda a, b: not (_lt(a, b) or _eq(a, b)), params=("any", "any")),
    "ge": GoFunc(fn=lambda a, b: not _lt(a, b), params=("any", "any")),
    "call": GoFunc(fn=_not_implemented_call, params=("any",), variadic="any"),
}
