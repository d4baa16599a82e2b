"""Go/RE2 regular expressions rewritten for Python's `re`.

PromQL regexes follow RE2. Most of it is Python syntax too; the differences that matter in
practice are rewritten here: flag groups such as `(?i)` in the middle of a pattern (an error in
Python, "until the end of the enclosing group" in RE2), `(?<name>...)`, `\\z`, `\\Q...\\E` and
POSIX classes like `[[:alpha:]]`.
"""

from __future__ import annotations

import re

_FLAGS_ONLY = re.compile(r"\(\?([imsU]*(?:-[imsU]*)?)\)")
_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}


def translate(pattern: str) -> str:
    out: list[str] = []
    # One entry per open group: how many scoped-flag groups to close with it.
    pending = [0]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i = _escape(pattern, i, out)
        elif ch == "[":
            i = _char_class(pattern, i, out)
        elif ch == "(":
            flags = _FLAGS_ONLY.match(pattern, i)
            if flags:
                out.append(f"(?{flags.group(1)}:")
                pending[-1] += 1
                i = flags.end()
                continue
            if pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
                out.append("(?P<")
                i += 3
            else:
                out.append("(")
                i += 1
            pending.append(0)
        elif ch == ")" and len(pending) > 1:
            out.append(")" * (pending.pop() + 1))
            i += 1
        else:
            out.append(ch)
            i += 1
    out.append(")" * pending[0])
    return "".join(out)


def _escape(pattern: str, i: int, out: list[str]) -> int:
    nxt = pattern[i + 1 : i + 2]
    if nxt == "z":
        out.append("\\Z")
        return i + 2
    if nxt == "Q":
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        out.append(re.escape(literal))
        return len(pattern) if end < 0 else end + 2
    out.append(pattern[i : i + 2])
    return i + 2


def _char_class(pattern: str, i: int, out: list[str]) -> int:
    out.append("[")
    i += 1
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    if pattern.startswith("]", i):
        out.append("\\]")
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        if pattern[i] == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        posix = re.match(r"\[:(\^?)([a-z]+):\]", pattern[i:])
        if posix and posix.group(2) in _POSIX and not posix.group(1):
            out.append(_POSIX[posix.group(2)])
            i += posix.end()
            continue
        if pattern[i] == "[":
            out.append("\\[")
        else:
            out.append(pattern[i])
        i += 1
    out.append("]")
    return i + 1
