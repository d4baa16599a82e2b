"""Bounds on a PromQL text, checked before the `promql_parser` binding sees it.

The binding and our evaluator both recurse over the syntax tree. Measured in a fresh process:
each level of the binding's tree holds its own copy of the subtree below it, so its memory
grows with depth times width (nested parentheses: 1,000 levels 80 MiB, 5,000 1.7 GiB, 8,000
4.4 GiB), and from 10,000 levels it overflows its native stack (the process dies, SIGSEGV);
printing its tree recurses in Python (RecursionError from ~500 levels of operators). A depth
counted on the raw text, in one pass and without recursion, keeps every text that reaches the
parser well inside that.

The depth counted is an upper bound of the tree's depth: every bracket pair `( [ {` is a level,
and so is every operator inside it, since `1+1+...+1` parses into a chain as deep as its
operators (the same for `or`, unary minus, range and subquery brackets `x[5m]`). Shipped rules
reach 9, Prometheus's own conformance tests 7.

Our evaluator uses up to 6.3 Python frames a level (`clamp(clamp(...), 0, 1)`): with a
request's stack below it, it fails from about 150 levels, and 128 take ~810 of Python's 1,000
frames. Hence a default of 64 levels and 64 KiB, and a ceiling of 128
(test_limits.py keeps this honest). Depth and length alone still let 64 KiB sit 64 levels deep
(400 MiB and more for regex matchers), so the bytes held over all levels are bounded too:
within the defaults the binding's peak stays under about 40 MiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.errors import ParseError

# A configured max_depth may not exceed this: beyond it the evaluator runs out of frames.
DEPTH_CEILING = 128
# The binding's memory is about 32 bytes per byte of text per level holding it, and a regex
# matcher costs as much as 100 bytes of text (it holds a compiled Rust regex). A text may be
# held COPY_FACTOR times over on average: 64 KiB x 16 x 32 B, about 32 MiB.
COPY_FACTOR = 16
REGEX_SIZE = 100
_OPERATOR_CHARS = frozenset("+-*/%^<>=!")
_OPERATOR_WORDS = frozenset({"and", "or", "unless", "atan2"})
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.")
_CLOSERS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True, kw_only=True)
class ParseLimits:
    """`max_length` in bytes of UTF-8, `max_depth` as counted above (config `query.*`)."""

    max_length: int = 65_536
    max_depth: int = 64


@dataclass(kw_only=True)
class _Level:
    opener: str
    base: int  # levels above this one, their operators included
    operators: int = 0
    deepest_child: int = 0

    @property
    def reach(self) -> int:
        """Depth from the top through this level, as far as the text has shown it."""
        return self.base + self.operators + self.deepest_child


def check_text(text: str, limits: ParseLimits) -> None:
    """A ParseError naming the limit and where it was crossed, or nothing."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) > limits.max_length:
        cut = len(encoded[: limits.max_length].decode(errors="ignore"))
        raise ParseError(
            f"{_where(text, cut)}: parse error: expression of {len(encoded)} bytes is longer "
            f"than the limit of {limits.max_length} (query.max_length)"
        )
    scan = _Scan(text=text, max_depth=limits.max_depth, max_copies=copy_budget(limits))
    index = scan.run()
    if index is not None and scan.deepest > limits.max_depth:
        raise ParseError(
            f"{_where(text, index)}: parse error: expression nested deeper than the limit of "
            f"{limits.max_depth} levels (query.max_depth; brackets and operators count)"
        )
    if index is not None:
        raise ParseError(
            f"{_where(text, index)}: parse error: expression too large for its nesting: each "
            f"level holds a copy of what it contains, and {scan.copies} bytes so held are more "
            f"than {COPY_FACTOR} x query.max_length ({copy_budget(limits)})"
        )


def copy_budget(limits: ParseLimits) -> int:
    return COPY_FACTOR * limits.max_length


def nesting_depth(text: str) -> int:
    """The depth `check_text` compares with `max_depth`: 0 for `up`, 1 for `1+1` or `(up)`."""
    scan = _Scan(text=text)
    scan.run()
    return scan.deepest


@dataclass(kw_only=True)
class _Scan:
    """One pass over the text, no recursion: the depth so far, and the bytes the binding
    would hold (each token's size times the levels above it). The depth only grows: a level's
    reach is fixed by the levels above it while it is open, and a closing level hands its
    reach to its parent."""

    text: str
    max_depth: int | None = None
    max_copies: int | None = None
    deepest: int = 0
    copies: int = 0
    stack: list[_Level] = field(default_factory=lambda: [_Level(opener="", base=0)])

    def run(self) -> int | None:
        """Index at which a limit was first crossed (the scan stops there), or None."""
        text, i = self.text, 0
        while i < len(text):
            start = i
            i, size = self._step(i)
            top = self.stack[-1]
            self.deepest = max(self.deepest, top.reach)
            self.copies += size * (top.base + top.operators + 1)
            if self.max_depth is not None and self.deepest > self.max_depth:
                return start
            if self.max_copies is not None and self.copies > self.max_copies:
                return start
        return None

    def _step(self, i: int) -> tuple[int, int]:
        """Past the token at `i`; and its size as the binding holds it."""
        text, ch, top = self.text, self.text[i], self.stack[-1]
        if ch in "\"'`":
            end = _skip_string(text, i)
            return end, end - i
        if ch == "#":
            end = text.find("\n", i)
            return (len(text) if end < 0 else end), 0
        if ch in _WORD_CHARS:
            end = _skip_word(text, i)
            # `or` between braces joins matcher sets (Prometheus 3): a flat list, no level
            top.operators += text[i:end] in _OPERATOR_WORDS and top.opener != "{"
            return end, end - i
        if top.opener == "{" and text.startswith(("=~", "!~"), i):
            return i + 2, REGEX_SIZE  # the binding compiles each regex matcher
        if ch in "([{":
            self.stack.append(_Level(opener=ch, base=top.base + top.operators + 1))
        elif ch in _CLOSERS:
            if len(self.stack) > 1 and top.opener == _CLOSERS[ch]:
                _close(self.stack)
        elif ch in _OPERATOR_CHARS:
            end = i
            while end < len(text) and text[end] in _OPERATOR_CHARS:
                end += 1
            if top.opener != "{":  # `!=` between braces is a matcher, no operator
                top.operators += _operators(text[i:end])
            return end, end - i
        elif ch.isspace():
            return i + 1, 0
        return i + 1, 1


def _operators(run: str) -> int:
    """Operators in a run such as `>=-`: each sign is one (`----x` nests four deep), and
    the rest (`*`, `==`, `!=`, ...) one more."""
    signs = run.count("+") + run.count("-")
    return signs + (len(run) > signs)


def _close(stack: list[_Level]) -> None:
    level = stack.pop()
    parent = stack[-1]
    # a range or subquery bracket wraps what it follows: one level more
    parent.operators += level.opener == "["
    parent.deepest_child = max(parent.deepest_child, level.operators + level.deepest_child + 1)


def _skip_string(text: str, i: int) -> int:
    quote = text[i]
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote != "`":
            i += 2
            continue
        if ch == quote:
            return i + 1
        i += 1
    return i


def _skip_word(text: str, i: int) -> int:
    start = i
    while i < len(text) and text[i] in _WORD_CHARS:
        i += 1
        # 1e-5: the sign belongs to the number, it is no operator
        if (
            text[i - 1] in "eE"
            and i < len(text)
            and text[i] in "+-"
            and text[start] in "0123456789."
        ):
            i += 1
    return i


def _where(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{column}"
