"""PromQL text -> the `promql_parser` AST, and the small conversions the evaluator needs.

The parser reports what is wrong but not where; `parse_query` finds the position itself (the
first character from which no prefix of the query parses any more) so that a ParseError names
both, as Prometheus's "1:5: parse error: ..." does.

`parse_query` is the one way in for PromQL text (API queries and match[], rules, backtests):
the text's length and depth are checked before the binding sees it (limits.py), and the
regexes of its selectors are compiled with RE2 after, so that one Go would refuse is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import promql_parser as pp

from controlplane.errors import ParseError
from controlplane.model.regex import RegexError, anchored
from controlplane.model.series import METRIC_NAME, Labels, Matcher, MatchOp
from controlplane.promql.limits import ParseLimits, check_text

# Finding the error position re-parses prefixes; beyond this many tries, or this many
# characters parsed in all (a long query failing at its end), we stop looking.
_MAX_POSITION_PROBES = 400
_MAX_POSITION_CHARS = 1 << 20
_DEFAULT_LIMITS = ParseLimits()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# The binding's enums are not hashable, so this is a list of pairs.
_MATCH_OPS = [
    (pp.MatchOp.Equal, MatchOp.EQ),
    (pp.MatchOp.NotEqual, MatchOp.NE),
    (pp.MatchOp.Re, MatchOp.RE),
    (pp.MatchOp.NotRe, MatchOp.NRE),
]


@dataclass(frozen=True, kw_only=True)
class Query:
    text: str
    root: Any
    # Go decodes "\xff" to a byte, the parser to U+00FF: literals that are not valid UTF-8 in
    # Go are remembered (decoded value -> Go-quoted form) so label-name checks can refuse them.
    invalid_strings: Mapping[str, str] = field(default_factory=dict)


def _is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit)


def _try_parse(text: str) -> tuple[Any, str | None]:
    try:
        return pp.parse(text), None
    except BaseException as exc:  # the Rust parser can panic (pyo3 PanicException)
        if _is_fatal(exc):
            raise
        return None, str(exc) or type(exc).__name__


def _position(text: str) -> tuple[int, int]:
    index = 0
    probes = min(_MAX_POSITION_PROBES, _MAX_POSITION_CHARS // max(len(text), 1))
    for probe, end in enumerate(range(len(text) - 1, 0, -1)):
        if probe >= probes:
            break
        if text[:end].strip() and _try_parse(text[:end])[1] is None:
            index = end
            break
    return _where(text, index)


def _where(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def parse_query(text: str, limits: ParseLimits = _DEFAULT_LIMITS) -> Query:
    if not text.strip():
        raise ParseError("1:1: parse error: no expression found in input")
    check_text(text, limits)  # before the binding: it crashes on deep nesting
    root, message = _try_parse(text)
    if message is not None:
        line, column = _position(text)
        raise ParseError(f"{line}:{column}: parse error: {message}")
    _check_regexes(text)
    return Query(text=text, root=root, invalid_strings=_invalid_strings(text))


def _check_regexes(text: str) -> None:
    """The binding checks regexes with Rust's syntax; Go's (RE2's) is what counts. Read off
    the text, which parsed: walking the binding's tree copies every subtree it visits."""
    for token in _TOKEN.finditer(text):
        if token.group("op") is None:
            continue  # a string or a comment, skipped whole
        literal = token.group("value")
        try:
            anchored(literal[1:-1] if literal[0] == "`" else _decode_go(literal[1:-1])[1])
        except RegexError as exc:
            line, column = _where(text, token.start("value"))
            raise ParseError(f"{line}:{column}: parse error: {exc}") from None
        except ValueError:
            continue  # an escape not decoded here: the store compiles it again, and says so


def duration_ms(value: timedelta | None) -> int:
    return 0 if value is None else value // _ONE_MS


def at_ms(node: Any, start_ms: int, end_ms: int) -> int | None:
    """The @ time of a selector or subquery, with start()/end() resolved; None without @."""
    at = node.at
    if at is None:
        return None
    if at.type == pp.AtModifierType.Start:
        return start_ms
    if at.type == pp.AtModifierType.End:
        return end_ms
    try:
        moment = at.at
    except BaseException as exc:  # the binding panics on timestamps before 1970
        if _is_fatal(exc):
            raise
        raise ParseError(f"@ modifier before 1970 is not supported in {str(node)!r}") from None
    return int((moment - _EPOCH) // _ONE_MS)


def selector_matchers(node: Any) -> list[list[Matcher]]:
    """Matcher sets of a vector selector; more than one when it uses `or` inside braces."""
    base = [_matcher(m) for m in node.matchers.matchers]
    if node.name:
        base.insert(0, Matcher(name=METRIC_NAME, op=MatchOp.EQ, value=node.name))
    alternatives = node.matchers.or_matchers or []
    if not alternatives:
        return [base]
    return [base + [_matcher(m) for m in group] for group in alternatives]


def _matcher(m: Any) -> Matcher:
    op = next(ours for theirs, ours in _MATCH_OPS if m.op == theirs)
    return Matcher(name=m.name, op=op, value=m.value)


def unwrap_parens(node: Any) -> Any:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


# --- strings, the Go way ------------------------------------------------------------------

_STRING = r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`'
_LITERAL = re.compile(_STRING, re.DOTALL)
# `=~ "regex"` and `!~ 'regex'`, and every other string and comment as a whole token, so that
# an `=~` inside one is not taken for an operator (linear: no alternative nests a repeat)
_TOKEN = re.compile(rf"(?P<op>=~|!~)\s*(?P<value>{_STRING})|#[^\n]*|{_STRING}", re.DOTALL)
_SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
}


def _invalid_strings(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _LITERAL.finditer(text):
        literal = match.group(0)
        if literal[0] == "`" or "\\" not in literal:
            continue
        raw, decoded = _decode_go(literal[1:-1])
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            found[decoded] = go_quote(raw)
    return found


def _decode_go(body: str) -> tuple[bytes, str]:
    """Go's bytes for a quoted literal body, and the string the Python parser makes of it."""
    out, chars, i = bytearray(), [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out += ch.encode()
            chars.append(ch)
            i += 1
            continue
        kind = body[i + 1]
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
            chars.append(chr(_SIMPLE_ESCAPES[kind]))
            i += 2
        elif kind == "x" or kind in "01234567":
            digits, base = (body[i + 2 : i + 4], 16) if kind == "x" else (body[i + 1 : i + 4], 8)
            byte = int(digits, base) & 0xFF
            out.append(byte)
            chars.append(chr(byte))
            i += 2 + len(digits) if kind == "x" else 1 + len(digits)
        else:
            width = 4 if kind == "u" else 8 if kind == "U" else 0
            rune = chr(int(body[i + 2 : i + 2 + width], 16)) if width else kind
            out += rune.encode("utf-8", "surrogatepass")
            chars.append(rune)
            i += 2 + width
    return bytes(out), "".join(chars)


_QUOTE_ESCAPES = {v: k for k, v in _SIMPLE_ESCAPES.items() if k != "'"}


def go_quote(value: str | bytes) -> str:
    """strconv.Quote: a double-quoted Go string literal, invalid UTF-8 bytes as \\xNN."""
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    parts, i = ['"'], 0
    while i < len(raw):
        for width in (1, 2, 3, 4):
            try:
                ch = raw[i : i + width].decode("utf-8")
                break
            except UnicodeDecodeError:
                continue
        else:
            parts.append(f"\\x{raw[i]:02x}")
            i += 1
            continue
        i += width
        code = ord(ch)
        if code in _QUOTE_ESCAPES:
            parts.append("\\" + _QUOTE_ESCAPES[code])
        elif ch.isprintable():
            parts.append(ch)
        else:
            parts.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    parts.append('"')
    return "".join(parts)


_LEGACY_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def format_labels(labels: Labels) -> str:
    """A label set the way Prometheus prints it: {a="1", b="2"}."""
    parts = []
    for name, value in labels:
        shown = name if _LEGACY_NAME.match(name) else go_quote(name)
        parts.append(f"{shown}={go_quote(value)}")
    return "{" + ", ".join(parts) + "}"


def format_float_f(value: float) -> str:
    """strconv.FormatFloat(f, 'f', -1, 64): shortest digits, never an exponent."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(np.format_float_positional(value, unique=True, trim="-"))


def format_float_g(value: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64): exponent form below 1e-4 and from 1e6 on."""
    if value == 0 or not math.isfinite(value):
        return format_float_f(value)
    number = Decimal(repr(float(value))).normalize()
    sign, digits, _ = number.as_tuple()
    exponent = number.adjusted()
    if -4 <= exponent < 6:
        return format_float_f(value)
    text = "".join(map(str, digits))
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def format_openmetrics(value: float) -> str:
    """labels.FormatOpenMetricsFloat: %g, with ".0" added to plain integers."""
    text = format_float_g(value)
    if any(ch in text for ch in ".eNI"):
        return text
    return text + ".0"
