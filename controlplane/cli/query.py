"""evaluate a PromQL expression on a running control plane or Prometheus and print the result

`controlplane query 'sum by (provider) (rate(casino_rounds_total[1m]))'` prints an aligned
table (series, value); with --start/--end/--step it runs a range query and prints each series
with its values, a row per run of consecutive steps. --json prints Prometheus's JSON instead.
Times are RFC3339, unix seconds, `now` or `now-5m`. Exit 1 with the error on failure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TextIO

from controlplane.api import encode
from controlplane.api.params import parse_duration_ms, parse_time_ms
from controlplane.errors import QueryError
from controlplane.model.series import METRIC_NAME, Labels, Series
from controlplane.model.times import iso
from controlplane.promql.results import QueryResult, ResultType
from controlplane.remote.prometheus import RemotePrometheus

DEFAULT_RANGE_MS = 3_600_000
# the Prometheus UI's default: about 250 points over the shown range
TARGET_POINTS = 250
VALUES_PER_ROW = 8


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("expr", help="PromQL expression")
    parser.add_argument("--time", help="instant query time (default now)")
    parser.add_argument("--start", help="range start (default end - 1h); implies a range query")
    parser.add_argument("--end", help="range end (default now); implies a range query")
    parser.add_argument("--step", help="range step, e.g. 15s (default range/250)")
    parser.add_argument(
        "--url",
        default=default_url(os.environ),
        help="control plane or Prometheus base URL (default $CONTROLPLANE_URL, else the local "
        "control plane on $CONTROLPLANE_PORT or 8000)",
    )
    parser.add_argument("--timeout", default="2m", help="query timeout (default 2m)")
    parser.add_argument("--json", action="store_true", help="print Prometheus's JSON")


def default_url(env: Mapping[str, str]) -> str:
    if env.get("CONTROLPLANE_URL"):
        return env["CONTROLPLANE_URL"]
    return f"http://127.0.0.1:{env.get('CONTROLPLANE_PORT') or 8000}"


def run(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        now_ms = round(clock() * 1000)
        timeout_s = parse_duration_ms(args.timeout) / 1000
        client = RemotePrometheus(args.url, timeout_s=timeout_s)
        try:
            result = _query(client, args, now_ms)
        finally:
            client.close()
    except QueryError as exc:
        print(f"error: {exc.error_type}: {exc}", file=err)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return 1
    if args.json:
        body = encode.success(encode.result_data(result), result.warnings)
        print(json.dumps(body, indent=2), file=out)
    else:
        for line in render(result):
            print(line, file=out)
        for warning in result.warnings:
            print(f"warning: {warning}", file=err)
    return 0


def _query(client: RemotePrometheus, args: argparse.Namespace, now_ms: int) -> QueryResult:
    if args.start is None and args.end is None and args.step is None:
        at = parse_when(args.time, now_ms) if args.time else now_ms
        return client.instant(args.expr, at)
    if args.time:
        raise ValueError("--time is for instant queries: use --start/--end/--step for a range")
    end = parse_when(args.end, now_ms) if args.end else now_ms
    start = parse_when(args.start, now_ms) if args.start else end - DEFAULT_RANGE_MS
    if args.step:
        step = parse_duration_ms(args.step)
    else:
        step = max(1000, (end - start) // TARGET_POINTS // 1000 * 1000)
    return client.range(args.expr, start, end, step)


def parse_when(text: str, now_ms: int) -> int:
    """RFC3339, unix seconds, `now`, or `now-5m` / `now+1h`."""
    if text == "now":
        return now_ms
    if text.startswith("now") and len(text) > 4 and text[3] in "+-":
        offset = parse_duration_ms(text[4:])
        return now_ms - offset if text[3] == "-" else now_ms + offset
    return parse_time_ms(text)


def series_name(labels: Labels) -> str:
    """`name{a="x", b="y"}` as Prometheus's UI shows a series."""
    pairs = dict(labels)
    name = pairs.pop(METRIC_NAME, "")
    inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in pairs.items())
    return f"{name}{{{inner}}}" if inner or not name else name


def render(result: QueryResult) -> list[str]:
    if result.type is ResultType.SCALAR:
        value = result.scalar.value if result.scalar is not None else float("nan")
        return [f"scalar  {encode.format_value(value)}"]
    if result.type is ResultType.STRING:
        return [result.text]
    if result.type is ResultType.VECTOR:
        rows = sorted((series_name(s.labels), encode.format_value(s.value)) for s in result.vector)
        return _table(rows) if rows else ["(no data)"]
    lines: list[str] = []
    for series in sorted(result.matrix, key=lambda s: s.labels):
        lines.append(f"{series_name(series.labels)}  ({len(series.timestamps)} points)")
        lines.extend(f"  {iso(t0)}  {' '.join(values)}" for t0, values in _rows(series))
    return lines or ["(no data)"]


def _table(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len("SERIES"), *(len(name) for name, _ in rows))
    value_width = max(len("VALUE"), *(len(value) for _, value in rows))
    header = f"{'SERIES':<{width}}  {'VALUE':>{value_width}}"
    return [header, *(f"{name:<{width}}  {value:>{value_width}}" for name, value in rows)]


def _rows(series: Series) -> Iterator[tuple[int, list[str]]]:
    """Runs of evenly spaced points, at most VALUES_PER_ROW a row; a gap starts a new row."""
    times, values = series.timestamps.tolist(), series.values.tolist()
    step = min((b - a for a, b in itertools.pairwise(times)), default=0)
    row: list[str] = []
    row_start = prev = 0
    for t, v in zip(times, values, strict=True):
        if row and (len(row) == VALUES_PER_ROW or t - prev != step):
            yield row_start, row
            row = []
        if not row:
            row_start = t
        row.append(encode.format_value(v))
        prev = t
    if row:
        yield row_start, row
