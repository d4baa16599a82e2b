"""Parse the Prometheus text exposition format (0.0.4) into samples: the scrape hot path.

Two parsers that MUST agree sample by sample:

- a strict fast path, written for speed with str methods only: it handles the lines a healthy
  exporter writes (`name value` or `name{a="x",b="y"} value`, no escapes, no timestamps, plain
  floats, `# HELP` / `# TYPE` / `# UNIT` comments); the parsed series text (`name{labels}`) is
  cached between scrapes, so a steady-state line costs one `rpartition`, one dict lookup and one
  `float`;
- `prometheus_client.parser` as the fallback for every line the fast path does not recognise
  (escapes, timestamps, odd whitespace, UTF-8 names, other comments, garbage).

The unit of fallback is the LINE: one unusual line (an escaped label value, a timestamp) costs
one slow parse, not the whole body. Each fallback line is parsed alone by
`text_string_to_metric_families`, which is context-free for samples: the only context the client
library uses is TYPE grouping, and its one effect on samples (renaming a counter sample `foo` to
`foo_total`) is OpenMetrics munging that Prometheus does not do, so per-line parsing also keeps
Prometheus's series names. A line the fallback rejects, a body that is not exposition text (an
HTML page, garbage) or a body cut short (the format requires a final newline) raises
ScrapeError naming the line number and the offending text.

The same pass keeps what the fast path's comment lines say of each metric family (`Parsed.
metadata`, for /api/v1/metadata): only lines starting with `#` are looked at, so sample lines
cost nothing more. Comment lines left to the fallback (odd spacing, quoted names) carry none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from controlplane.errors import ScrapeError
from controlplane.model.series import METRIC_NAME, Labels

T = TypeVar("T")

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# the client library refuses label names starting with "__"; the fast path leaves them to it
_LABEL_RE = re.compile(r"(?!__)[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = frozenset(
    {"counter", "gauge", "summary", "histogram", "gaugehistogram", "unknown", "info", "stateset"}
    | {"untyped"}
)
_MAX_SHOWN = 200
_HELP_ESCAPE = re.compile(r"\\([\\n])")


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One exposed sample. `labels` include `__name__`; `timestamp_ms` only when exposed."""

    labels: Labels
    value: float
    timestamp_ms: int | None = None

    @property
    def name(self) -> str:
        return dict(self.labels)[METRIC_NAME]


@dataclass(frozen=True, kw_only=True)
class MetricMetadata:
    """What a body's `# TYPE`, `# HELP` and `# UNIT` lines say of one metric family, keyed by
    the name those lines carry (a histogram's family name, not its `_bucket` series).
    `untyped` is reported as `unknown`, and HELP escapes are undone, as Prometheus does."""

    type: str = "unknown"
    help: str = ""
    unit: str = ""


_NO_METADATA: Mapping[str, MetricMetadata] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class Parsed(Generic[T]):
    """A parsed body, columnar: `series[i]` is what the resolver made of sample i's labels.

    `timestamps` is None when no line carried a timestamp (the usual case), else one entry per
    sample (None where that line had none). `metadata`: per family name, what its comment
    lines said.
    """

    series: list[T]
    values: list[float]
    timestamps: list[int | None] | None
    metadata: Mapping[str, MetricMetadata] = field(default_factory=lambda: _NO_METADATA)


def _identity(labels: Labels) -> Labels:
    return labels


def _shown(line: str) -> str:
    return repr(line if len(line) <= _MAX_SHOWN else line[:_MAX_SHOWN] + "...")


def parse_with_prometheus_client(text: str) -> list[Sample]:
    """The reference: prometheus_client's parser over `text`, as Samples (ValueError if bad).

    Empty label values are dropped (Prometheus treats `a=""` as no label `a`); timestamps,
    which the client library returns in seconds, are converted back to milliseconds.
    """
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(
                sorted([(k, v) for k, v in s.labels.items() if v != ""] + [(METRIC_NAME, s.name)])
            )
            ts = None if s.timestamp is None else round(float(s.timestamp) * 1000)
            out.append(Sample(labels=labels, value=float(s.value), timestamp_ms=ts))
    return out


def _fast_labels(key: str) -> Labels | None:
    """Labels of a `name` or `name{a="x",...}` key, or None if the fast path must not judge it."""
    brace = key.find("{")
    if brace < 0:
        return ((METRIC_NAME, key),) if _NAME_RE.fullmatch(key) else None
    name = key[:brace]
    if not key.endswith("}") or not _NAME_RE.fullmatch(name):
        return None
    text = key[brace + 1 : -1]
    if "\\" in text:
        return None
    pairs = {METRIC_NAME: name}
    i, n = 0, len(text)
    while i < n:
        eq = text.find("=", i)
        end = text.find('"', eq + 2)
        if eq < 0 or end < 0 or text[eq + 1 : eq + 2] != '"':
            return None
        label = text[i:eq]
        if label in pairs or not _LABEL_RE.fullmatch(label):
            return None
        pairs[label] = text[eq + 2 : end]
        i = end + 1
        if i < n:
            if text[i] != ",":
                return None
            i += 1
    return tuple(sorted((k, v) for k, v in pairs.items() if v != ""))


def _fast_comment(parts: list[str]) -> bool:
    """True for the HELP/TYPE/UNIT lines (split on the first 3 spaces) the client library
    would accept (it ignores UNIT, an OpenMetrics line); False for anything else."""
    if len(parts) < 3 or parts[0] != "#" or not _NAME_RE.fullmatch(parts[2]):
        return False
    if parts[1] == "HELP":
        return True
    if parts[1] == "UNIT":
        return len(parts) == 4 and _NAME_RE.fullmatch(parts[3]) is not None
    return parts[1] == "TYPE" and len(parts) == 4 and parts[3] in _TYPES


Note = tuple[str, str, str]  # (family name, TYPE | HELP | UNIT, what it says)
_UNSEEN: Note = ("", "", "")  # compared by identity: a comment line not met before


def _note(parts: list[str]) -> Note:
    """What one fast-path comment line (split on its first 3 spaces) says."""
    text = parts[3] if len(parts) == 4 else ""
    if parts[1] == "TYPE" and text == "untyped":
        text = "unknown"
    elif parts[1] == "HELP" and "\\" in text:
        # the text format escapes only backslash and newline in HELP
        text = _HELP_ESCAPE.sub(_unescape, text)
    return parts[2], parts[1], text


def _unescape(match: re.Match[str]) -> str:
    return "\n" if match.group(1) == "n" else "\\"


def _metadata(notes: list[Note]) -> Mapping[str, MetricMetadata]:
    if not notes:
        return _NO_METADATA
    fields: dict[str, dict[str, str]] = {}
    for name, kind, text in notes:
        fields.setdefault(name, {})[kind.lower()] = text
    return MappingProxyType({name: MetricMetadata(**f) for name, f in fields.items()})


class ExpositionParser(Generic[T]):
    """Stateful text-format parser; keep one per scrape target so its cache stays warm.

    `resolve(labels)` turns a parsed label set (incl. `__name__`) into what the caller stores
    per sample (the scraper passes a function returning a store series ref); its result is
    cached by the raw series text, so it runs once per new series, not once per scrape. Call
    `clear_cache()` when earlier results became invalid. `resolve` must not return None.
    The cache is dropped when it grows past twice the last body's sample count (series
    churn), and rebuilt by the next scrape.
    """

    def __init__(self, resolve: Callable[[Labels], T], *, min_cache: int = 10_000) -> None:
        self._resolve = resolve
        self._cache: dict[str, T] = {}
        self._min_cache = min_cache
        # comment line -> what it says (None: the fallback's); a body's comments rarely
        # change, so the metadata of the last body is reused while they do not
        self._comments: dict[str, Note | None] = {}
        self._last_notes: list[Note] = []
        self._last_metadata: Mapping[str, MetricMetadata] = _NO_METADATA
        self.fallback_lines = 0  # lines the fast path handed to prometheus_client, for metrics

    def clear_cache(self) -> None:
        self._cache.clear()

    def parse(self, body: str) -> Parsed[T]:
        """Samples of a whole body, in body order (ScrapeError on the first bad line)."""
        if body and not body.endswith("\n"):
            last = body.rsplit("\n", 1)[-1]
            raise ScrapeError(
                f"line {body.count(chr(10)) + 1}: truncated body, no final newline: {_shown(last)}"
            )
        cache, resolve, comments = self._cache, self._resolve, self._comments
        series: list[T] = []
        values: list[float] = []
        stamps: list[int | None] | None = None
        notes: list[Note] = []
        lines = body.split("\n")
        lines.pop()
        for lineno, line in enumerate(lines, 1):
            if not line:
                continue
            if line[0] == "#":
                note = comments.get(line, _UNSEEN)
                if note is _UNSEEN:
                    parts = line.split(" ", 3)
                    note = comments[line] = _note(parts) if _fast_comment(parts) else None
                if note is None:
                    self._slow(lineno, line)
                else:
                    notes.append(note)
                continue
            key, _, tok = line.rpartition(" ")
            ref = cache.get(key)
            if ref is None:
                labels = _fast_labels(key)
                ref = None if labels is None else resolve(labels)
                if ref is not None:
                    cache[key] = ref
            try:
                value = float(tok)
            except ValueError:
                ref = None
            if ref is None or "_" in tok or (value == 0.0 and "-" in tok):
                # "1_0" and integer "-0" are where float() and the client library differ
                for s in self._slow(lineno, line):
                    if stamps is None and s.timestamp_ms is not None:
                        stamps = [None] * len(series)
                    series.append(resolve(s.labels))
                    values.append(s.value)
                    if stamps is not None:
                        stamps.append(s.timestamp_ms)
                continue
            series.append(ref)
            values.append(value)
            if stamps is not None:
                stamps.append(None)
        if len(cache) > max(self._min_cache, 2 * len(series)):
            cache.clear()
        if len(comments) > max(self._min_cache, 2 * len(notes)):
            comments.clear()
        if notes != self._last_notes:
            self._last_notes, self._last_metadata = notes, _metadata(notes)
        return Parsed(series=series, values=values, timestamps=stamps, metadata=self._last_metadata)

    def _slow(self, lineno: int, line: str) -> list[Sample]:
        self.fallback_lines += 1
        try:
            return parse_with_prometheus_client(line + "\n")
        except (ValueError, IndexError, KeyError) as exc:
            reason = str(exc) or type(exc).__name__
            if len(reason) > _MAX_SHOWN:
                reason = reason[:_MAX_SHOWN] + "..."
            raise ScrapeError(f"line {lineno}: {reason}: {_shown(line)}") from None


def parse_samples(body: str) -> list[Sample]:
    """Parse a whole body with a fresh parser (fast path + per-line fallback) into Samples."""
    parser = ExpositionParser(_identity)
    parsed = parser.parse(body)
    stamps = parsed.timestamps or [None] * len(parsed.values)
    return [
        Sample(labels=labels, value=value, timestamp_ms=ts)
        for labels, value, ts in zip(parsed.series, parsed.values, stamps, strict=True)
    ]
