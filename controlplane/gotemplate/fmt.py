"""Go's `fmt` and `strconv` renderings that rule templates expose to users.

Annotations are read by people and compared by `promtool test rules`, so a value must print
exactly as Prometheus prints it: `{{ $value }}` is Go's `%v` of a float64 (shortest digits,
exponent form from an exponent of 6 on: `1.234567e+06`), `printf` follows Go's verbs, and
strings are quoted as `strconv.Quote` does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?([a-zA-Z%])")


def _shortest_digits(v: float) -> tuple[str, int]:
    """(digits, decimal point position) of the shortest repr that round-trips, as Go's
    strconv finds them: 1234.5 -> ("12345", 4); 0.001 -> ("1", -2)."""
    _, digits, exponent = Decimal(repr(abs(v))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    return text, len(digits) + exponent


def _special(v: float, plus: bool = False, space: bool = False) -> str | None:
    if math.isnan(v):
        return "+NaN" if plus else (" NaN" if space else "NaN")
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def format_float_shortest(v: float, exp_threshold: int = 6) -> str:
    """Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which is also fmt's `%v` of a float64."""
    special = _special(v)
    if special is not None:
        return special
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    digits, dp = _shortest_digits(v)
    sign = "-" if v < 0 else ""
    exp = dp - 1
    if exp < -4 or exp >= exp_threshold:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return f"{sign}{digits}{'0' * (dp - len(digits))}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def format_float_e_shortest(v: float, upper: bool = False) -> str:
    """Go's `strconv.FormatFloat(v, 'e', -1, 64)` ('E' when upper): `1e+00`, `1.5E+02`."""
    special = _special(v)
    if special is not None:
        return special
    if v == 0:
        text = ("-" if math.copysign(1.0, v) < 0 else "") + "0e+00"
    else:
        digits, dp = _shortest_digits(v)
        exp = dp - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{'-' if v < 0 else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return text.upper() if upper else text


def go_quote(text: str) -> str:
    """`strconv.Quote`: double quotes, Go escapes, printable Unicode kept as is."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_SIMPLE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]string"
    if value is None:
        return "<nil>"
    return getattr(type(value), "go_type", type(value).__name__)


def format_value(value: Any) -> str:
    """fmt.Sprint of one value (`%v`), as text/template prints an action's result."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float_shortest(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = " ".join(f"{k}:{format_value(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, Sequence):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    go_repr = getattr(value, "go_repr", None)
    return go_repr() if callable(go_repr) else str(value)


def sprint(args: Sequence[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_value(arg))
    return "".join(out)


def sprintln(args: Sequence[Any]) -> str:
    return " ".join(format_value(a) for a in args) + "\n"


def sprintf(fmt: str, args: Sequence[Any]) -> str:
    """fmt.Sprintf for the verbs rule templates use, with Go's error renderings."""
    out: list[str] = []
    pos = 0
    argi = 0
    while pos < len(fmt):
        start = fmt.find("%", pos)
        if start < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:start])
        match = _VERB.match(fmt, start)
        if match is None:
            out.append("%!(NOVERB)")
            break
        pos = match.end()
        flags, width, prec, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        w, argi = _star(width, args, argi)
        p, argi = _star(prec, args, argi) if prec is not None else (None, argi)
        if prec == "":
            p = 0
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_one(verb, flags, w, p, args[argi]))
        argi += 1
    if argi < len(args):
        extra = ", ".join(f"{go_type_name(a)}={format_value(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _star(spec: str | None, args: Sequence[Any], argi: int) -> tuple[int | None, int]:
    if spec is None or spec == "":
        return None, argi
    if spec == "*":
        if argi < len(args) and isinstance(args[argi], int):
            return int(args[argi]), argi + 1
        return None, argi + 1
    return int(spec), argi


def _pad(text: str, flags: str, width: int | None, numeric: bool = False) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric and text[-1:].isdigit():
        sign = text[0] if text[0] in "+- " else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def _sign(text: str, flags: str, negative: bool) -> str:
    if negative:
        return text
    if "+" in flags:
        return "+" + text
    if " " in flags:
        return " " + text
    return text


def _one(verb: str, flags: str, width: int | None, prec: int | None, arg: Any) -> str:
    if isinstance(arg, bool):
        if verb in "vt":
            return _pad("true" if arg else "false", flags, width)
        return f"%!{verb}(bool={format_value(arg)})"
    if isinstance(arg, float):
        return _float_verb(verb, flags, width, prec, arg)
    if isinstance(arg, int):
        return _int_verb(verb, flags, width, prec, arg)
    if isinstance(arg, str):
        return _str_verb(verb, flags, width, prec, arg)
    if verb in "vs":
        return _pad(format_value(arg), flags, width)
    return f"%!{verb}({go_type_name(arg)}={format_value(arg)})"


def _float_verb(verb: str, flags: str, width: int | None, prec: int | None, v: float) -> str:
    special = _special(v, "+" in flags, " " in flags)
    if special is not None and verb in "veEfFgG":
        return _pad(special, flags.replace("0", ""), width)
    if verb in "vgG":
        if prec is None:
            text = format_float_shortest(v)
        else:
            text = f"%{'#' if '#' in flags else ''}.{prec}g" % v
        text = text.upper() if verb == "G" else text
    elif verb in "eE":
        text = f"%.{6 if prec is None else prec}{verb}" % v
    elif verb in "fF":
        text = f"%.{6 if prec is None else prec}f" % v
    elif verb in "xX":
        text = _hex_float(v)
        text = text.upper() if verb == "X" else text
    else:
        return f"%!{verb}(float64={_float_verb('v', flags, width, prec, v)})"
    return _pad(_sign(text, flags, text.startswith("-")), flags, width, numeric=True)


def _hex_float(v: float) -> str:
    mantissa, exp = float.hex(abs(v))[2:].split("p")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    e = int(exp)
    return f"{'-' if v < 0 else ''}0x{mantissa}p{'+' if e >= 0 else '-'}{abs(e):02d}"


def _int_verb(verb: str, flags: str, width: int | None, prec: int | None, v: int) -> str:
    if verb in "vd":
        text = str(abs(v))
    elif verb == "x":
        text = f"{abs(v):x}"
    elif verb == "X":
        text = f"{abs(v):X}"
    elif verb == "o":
        text = f"{abs(v):o}"
    elif verb == "b":
        text = f"{abs(v):b}"
    elif verb == "c":
        return _pad(chr(v), flags, width)
    elif verb == "q":
        return _pad("'" + go_quote(chr(v))[1:-1].replace("'", "\\'") + "'", flags, width)
    else:
        # Go prints a mismatched operand with the verb's flags still applied: %.2f of 1 is
        # `%!f(int=01)`
        return f"%!{verb}(int={_int_verb('v', flags, width, prec, v)})"
    if prec is not None:
        text = text.rjust(prec, "0")
    text = ("-" + text) if v < 0 else text
    return _pad(_sign(text, flags, v < 0), flags, width, numeric=prec is None)


def _str_verb(verb: str, flags: str, width: int | None, prec: int | None, v: str) -> str:
    if prec is not None:
        v = v[:prec]
    if verb in "vs":
        return _pad(v, flags, width)
    if verb == "q":
        return _pad(go_quote(v), flags, width)
    if verb in "xX":
        text = v.encode().hex()
        return _pad(text.upper() if verb == "X" else text, flags, width)
    return f"%!{verb}(string={_str_verb('v', flags, width, None, v)})"
