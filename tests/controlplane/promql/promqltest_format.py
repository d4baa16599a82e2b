"""Parser of Prometheus's promqltest files (promql/promqltest/README.md, vendored next to them).

Commands: `load <step>` (and `load_with_nhcb`) with series lines in the expanding notation,
`clear`, and `eval instant at <t> <expr>` / `eval range from <t> to <t> step <d> <expr>` (and
the deprecated eval_fail/eval_ordered/eval_warn/eval_info forms) with their `expect` lines
and expected results. Native histogram values (`{{...}}`) are recognised but not decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser as pp

from controlplane.model.series import METRIC_NAME, STALE_NAN, Labels

PAT_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
PAT_INSTANT = re.compile(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
PAT_RANGE = re.compile(
    r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$"
)
PAT_EXPECT = re.compile(
    r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$"
)
PAT_RANGE_VECTOR = re.compile(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")
PAT_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
NUMBER = r"[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN]|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
PAT_NUMBER = re.compile(rf"^{NUMBER}$")
PAT_REPEAT = re.compile(rf"^({NUMBER})x(\d+)$")
PAT_SEQUENCE = re.compile(rf"^({NUMBER})([+-])((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)x(\d+)$")
PAT_TOKEN = re.compile(r"\{\{.*?\}\}(?:[+-]\{\{.*?\}\})?(?:x\d+)?|\S+")
PAT_HISTOGRAM_TIMES = re.compile(r"x(\d+)$")
UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


class Histogram:
    """A native histogram sample: present, but not decoded."""

    def __repr__(self) -> str:
        return "{{...}}"


HISTOGRAM = Histogram()
Value = float | Histogram | None  # None: an omitted sample ("_")


class FormatError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class LoadedSeries:
    labels: Labels
    values: list[Value]


@dataclass(frozen=True, kw_only=True)
class Load:
    line: int
    step_ms: int
    with_nhcb: bool
    series: list[LoadedSeries]


@dataclass(frozen=True, kw_only=True)
class Clear:
    line: int


@dataclass(kw_only=True)
class Eval:
    line: int
    expr: str
    instant: bool
    start_ms: int
    end_ms: int
    step_ms: int
    fail: bool = False
    fail_message: str | None = None
    fail_regex: str | None = None
    ordered: bool = False
    annotations: list[str] = field(default_factory=list)
    expect_scalar: float | None = None
    expect_string: str | None = None
    range_vector: bool = False
    expected: list[LoadedSeries] = field(default_factory=list)

    @property
    def has_histograms(self) -> bool:
        return any(isinstance(v, Histogram) for s in self.expected for v in s.values)


Command = Load | Clear | Eval


def parse_duration_ms(text: str) -> int:
    text = text.strip()
    if text == "0":
        return 0
    match = PAT_DURATION.match(text)
    if not match or not any(match.groups()):
        raise FormatError(f"invalid duration {text!r}")
    return sum(int(g) * unit for g, unit in zip(match.groups(), UNIT_MS, strict=True) if g)


def parse_number(text: str) -> float:
    if not PAT_NUMBER.match(text):
        raise FormatError(f"invalid number {text!r}")
    return float(text)


def parse_values(text: str) -> list[Value]:
    out: list[Value] = []
    for token in PAT_TOKEN.findall(text):
        out.extend(_expand(token))
    return out


def _expand(token: str) -> list[Value]:
    if token == "_":
        return [None]
    if token.startswith("_x"):
        return [None] * int(token[2:])
    if token == "stale":
        return [STALE_NAN]
    if token.startswith("{{"):
        times = PAT_HISTOGRAM_TIMES.search(token)
        return [HISTOGRAM] * (int(times.group(1)) + 1 if times else 1)
    if PAT_NUMBER.match(token):
        return [float(token)]
    repeat = PAT_REPEAT.match(token)
    if repeat:
        return [float(repeat.group(1))] * (int(repeat.group(2)) + 1)
    sequence = PAT_SEQUENCE.match(token)
    if sequence:
        value = float(sequence.group(1))
        delta = float(sequence.group(3)) * (1 if sequence.group(2) == "+" else -1)
        out: list[Value] = []
        for _ in range(int(sequence.group(4)) + 1):
            out.append(value)
            value += delta  # accumulated like Prometheus, rounding included
        return out
    raise FormatError(f"invalid sample value {token!r}")


def parse_series(line: str) -> LoadedSeries:
    metric, rest = _split_metric(line)
    return LoadedSeries(labels=parse_labels(metric), values=parse_values(rest))


def _split_metric(line: str) -> tuple[str, str]:
    brace = line.find("{")
    space = re.search(r"\s", line)
    if brace < 0 or (space is not None and space.start() < brace):
        end = space.start() if space else len(line)
        return line[:end], line[end:]
    quote = None
    for i in range(brace, len(line)):
        ch = line[i]
        if quote:
            if ch == "\\":
                continue
            if ch == quote and line[i - 1] != "\\":
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch == "}":
            return line[: i + 1], line[i + 1 :]
    raise FormatError(f"unterminated labels in {line!r}")


def parse_labels(metric: str) -> Labels:
    if metric.replace(" ", "") == "{}":
        return ()
    node = pp.parse(metric)
    if not isinstance(node, pp.VectorSelector):
        raise FormatError(f"not a series: {metric!r}")
    pairs = {m.name: m.value for m in node.matchers.matchers}
    if node.name:
        pairs[METRIC_NAME] = node.name
    return tuple(sorted((k, v) for k, v in pairs.items() if v))


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.split("\n"):
        line = raw.strip()
        out.append("" if line.startswith("#") else line)
    return out


def parse_file(path: Path) -> list[Command]:
    lines = _lines(path.read_text())
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        word = re.split(r"[\t ]+", line, maxsplit=1)[0].lower()
        if word == "clear":
            commands.append(Clear(line=i + 1))
            i += 1
        elif word.startswith("load"):
            i = _parse_load(lines, i, commands)
        elif word.startswith("eval"):
            i = _parse_eval(lines, i, commands)
        else:
            raise FormatError(f"{path.name}:{i + 1}: invalid command {line!r}")
    return commands


def _parse_load(lines: list[str], i: int, commands: list[Command]) -> int:
    match = PAT_LOAD.match(lines[i])
    if not match:
        raise FormatError(f"line {i + 1}: invalid load command")
    series = []
    j = i + 1
    while j < len(lines) and lines[j]:
        series.append(parse_series(lines[j]))
        j += 1
    step = parse_duration_ms(match.group(2))
    commands.append(Load(line=i + 1, step_ms=step, with_nhcb=bool(match.group(1)), series=series))
    return j


def _parse_eval(lines: list[str], i: int, commands: list[Command]) -> int:
    instant, ranged = PAT_INSTANT.match(lines[i]), PAT_RANGE.match(lines[i])
    if instant:
        at = parse_duration_ms(instant.group(2))
        cmd = Eval(
            line=i + 1, expr=instant.group(3), instant=True, start_ms=at, end_ms=at, step_ms=0
        )
        modifier = instant.group(1)
    elif ranged:
        start, end = parse_duration_ms(ranged.group(2)), parse_duration_ms(ranged.group(3))
        cmd = Eval(
            line=i + 1,
            expr=ranged.group(5),
            instant=False,
            start_ms=start,
            end_ms=end,
            step_ms=parse_duration_ms(ranged.group(4)),
        )
        modifier = ranged.group(1)
    else:
        raise FormatError(f"line {i + 1}: invalid eval command")
    cmd.fail = modifier == "fail"
    cmd.ordered = modifier == "ordered"
    j = i + 1
    while j < len(lines) and lines[j]:
        if _parse_eval_line(cmd, lines[j]):
            j += 1
            break
        j += 1
    commands.append(cmd)
    return j


def _parse_eval_line(cmd: Eval, line: str) -> bool:
    """Apply one line under an eval; True when it ends the block (as upstream's `break`)."""
    if cmd.fail and line.startswith("expected_fail_message"):
        cmd.fail_message = line.removeprefix("expected_fail_message").strip()
        return True
    if cmd.fail and line.startswith("expected_fail_regexp"):
        cmd.fail_regex = line.removeprefix("expected_fail_regexp").strip()
        return True
    vector = PAT_RANGE_VECTOR.match(line)
    if vector:
        cmd.start_ms, cmd.end_ms = (
            parse_duration_ms(vector.group(1)),
            parse_duration_ms(vector.group(2)),
        )
        cmd.step_ms = parse_duration_ms(vector.group(3))
        cmd.range_vector = True
        return False
    if line.startswith("expect string"):
        cmd.expect_string = _unquote(line.removeprefix("expect string").strip())
        return False
    if line.split(" ")[0] == "expect":
        _parse_expect(cmd, line)
        return False
    try:
        cmd.expect_scalar = parse_number(line)
        return True
    except FormatError:
        pass
    series = parse_series(line)
    if len(series.values) > 1 and cmd.instant and not cmd.range_vector:
        raise FormatError(f"line {cmd.line}: several values for an instant evaluation")
    cmd.expected.append(series)
    return False


def _parse_expect(cmd: Eval, line: str) -> None:
    match = PAT_EXPECT.match(line.strip())
    if not match:
        raise FormatError(f"line {cmd.line}: invalid expect line {line!r}")
    kind, how, text = match.groups()
    if kind == "fail":
        cmd.fail = True
        if how == "msg":
            cmd.fail_message = text.strip()
        elif how == "regex":
            cmd.fail_regex = text.strip()
    elif kind == "ordered":
        cmd.ordered = True
    else:
        cmd.annotations.append(line)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1]
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return bytes(text[1:-1], "utf-8").decode("unicode_escape")
    raise FormatError(f"invalid string literal {text!r}")
