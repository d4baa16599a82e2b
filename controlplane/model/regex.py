"""Regular expressions with RE2's syntax and its linear-time guarantee (the `google-re2`
binding), as Prometheus and Alertmanager use Go's RE2-based `regexp`.

Python's `re` backtracks: `(a+)+$` against a long label value takes exponential time, in C,
holding the GIL, so the whole process froze. RE2 matches in time linear in the text, releases
the GIL while it does, and speaks Go's syntax natively (`(?i)` mid-pattern, `\\z`, `\\Q...\\E`,
`[[:alpha:]]`, `(?P<name>...)`), so nothing is rewritten any more.

Patterns are fully anchored and `.` matches a newline, as Prometheus compiles them:
`^(?s:PATTERN)$`, matched with an unanchored search as Go's `MatchString` does (so even
`a)|(b` behaves as in Prometheus). Alertmanager's matchers share this (they always did here).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

# Memory budget of one compiled pattern, program and DFA cache together (RE2's default is
# 8 MiB). A pattern whose program alone needs more is refused ("pattern too large"), about
# 20,000 alternatives of 24 characters; when the DFA cache fills, RE2 goes on in its slower,
# still linear NFA. Two caches of _CACHED patterns bound what compiled patterns can hold.
MAX_MEM = 2 << 20
_CACHED = 512


class RegexError(ValueError):
    """A pattern RE2 refuses; the message names the pattern, `reason` is RE2's own words."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(f"invalid regular expression {pattern!r}: {reason}")
        self.pattern = pattern
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Submatch:
    """The groups of one match: `groups[0]` is the whole text matched, None for unset."""

    groups: tuple[str | None, ...]
    names: Mapping[str, int]

    def group(self, key: int | str) -> str:
        """A group by number or name; '' for an unset or unknown one (as Go's Expand)."""
        index = self.names.get(key, -1) if isinstance(key, str) else key
        if not 0 <= index < len(self.groups):
            return ""
        return self.groups[index] or ""


@dataclass(frozen=True, eq=False)
class Regex:
    pattern: str
    _compiled: Any = field(repr=False)

    def matches(self, text: str) -> bool:
        return self._compiled.search(_encode(text)) is not None

    def submatch(self, text: str) -> Submatch | None:
        found = self._compiled.search(_encode(text))
        if found is None:
            return None
        groups = tuple(None if g is None else _decode(g) for g in (found.group(0), *found.groups()))
        names = {_decode(name): index for name, index in self._compiled.groupindex.items()}
        return Submatch(groups=groups, names=names)


def anchored(pattern: str) -> Regex:
    """`pattern` compiled for yes/no matching (no capture groups: RE2's fastest engine)."""
    return _compile(pattern, capture=False)


def anchored_with_groups(pattern: str) -> Regex:
    """`pattern` compiled so that `submatch` reports its groups (label_replace)."""
    return _compile(pattern, capture=True)


@functools.lru_cache(maxsize=_CACHED)
def _compile(pattern: str, *, capture: bool) -> Regex:
    options = re2.Options()
    options.max_mem = MAX_MEM
    options.log_errors = False  # the error is raised, not printed on stderr
    options.never_capture = not capture
    wrapped = b"^(?s:" + _encode(pattern) + b")$"
    try:
        compiled = re2.compile(wrapped, options)
    except re2.error as exc:
        reason = _reason(exc).replace(_decode(wrapped), pattern)
        raise RegexError(pattern, reason) from None
    return Regex(pattern, compiled)


def _encode(text: str) -> bytes:
    # a lone surrogate (JSON "\ud800") has no UTF-8 form: pass it through, RE2 sees bad UTF-8
    return text.encode("utf-8", "surrogatepass")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _reason(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
