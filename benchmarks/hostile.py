"""What hostile input costs the control plane, against what it cost before (the peers, run in
the same run): a catastrophic regex on RE2 and on Python's `re`; a deeply nested expression
refused by the parse front end and given to the parser binding directly; a query stopped by
its deadline; a webhook body read with and without the nesting check.

    python benchmarks/hostile.py [--no-write]

Every measurement that could hang or crash (Python's `re`, the raw binding) runs in a
subprocess with a time limit, so the script always finishes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmd import machine, write_section

from controlplane.errors import ParseError, QueryTimeout
from controlplane.model import jsonbody, regex
from controlplane.model.series import labels_from
from controlplane.promql.engine import Engine
from controlplane.promql.parse import parse_query
from controlplane.tsdb.store import Store

ROOT = Path(__file__).resolve().parent.parent
MARKERS = ("<!-- hostile:begin -->", "<!-- hostile:end -->")
LIMIT_S = 20.0


def best_of(fn: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def in_subprocess(code: str) -> str:
    """Seconds the snippet took, 'crashed (exit N)', or 'over 20 s (killed)'."""
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", code], timeout=LIMIT_S, capture_output=True)
    except subprocess.TimeoutExpired:
        return f"over {LIMIT_S:g} s (killed)"
    took = time.perf_counter() - started
    return f"{took:.2f} s" if done.returncode == 0 else f"crashed (exit {done.returncode})"


def regex_rows() -> list[str]:
    rows = []
    for n in (20, 24, 28):
        text = "a" * n + "b"
        ours = best_of(lambda t=text: regex.anchored("(a+)+").matches(t))
        peer = in_subprocess(f"import re; re.fullmatch(r'(a+)+', {'a' * n + 'b'!r})")
        rows.append(f"| `(a+)+` on {n} `a`s and a `b` | {ours * 1e6:.0f} µs | {peer} |")
    long = "a" * 1_000_000 + "b"
    ours = best_of(lambda: regex.anchored("(a+)+").matches(long), repeat=3)
    rows.append(f"| `(a+)+` on 1,000,000 `a`s and a `b` | {ours * 1e3:.1f} ms | (not tried) |")
    return rows


def parse_rows() -> list[str]:
    rows = []
    for depth in (5_000, 50_000):
        text = "(" * depth + "1" + ")" * depth

        def refuse(t: str = text) -> None:
            try:
                parse_query(t)
            except ParseError:
                return
            raise AssertionError("a deep expression was parsed")

        ours = best_of(refuse, repeat=3)
        peer = in_subprocess(
            f"import promql_parser; promql_parser.parse('(' * {depth} + '1' + ')' * {depth})"
        )
        rows.append(f"| {depth:,} nested parentheses | refused in {ours * 1e3:.1f} ms | {peer} |")
    shipped = "sum by (region) (rate(casino_game_launches_total{outcome=~'ok|failover'}[1m]))"
    ours = best_of(lambda: parse_query(shipped), repeat=50)
    rows.append(f"| a shipped rule's expression | parsed in {ours * 1e6:.0f} µs | |")
    return rows


def deadline_row() -> str:
    source = Store(retention_ms=10 * 3_600_000)
    for i in range(400):
        labels = labels_from({"__name__": "x", "i": str(i)})
        for t in range(0, 3_600_000, 15_000):
            source.append(labels, 1_700_000_000_000 + t, float(t))
    expr = "sum(rate(x[5m:1s]))"

    def run(timeout_s: float) -> tuple[str, float]:
        engine = Engine(source, timeout_s=timeout_s)
        started = time.perf_counter()
        try:
            engine.range(expr, 1_700_000_000_000, 1_700_003_600_000, 1_000)
            outcome = "finished"
        except QueryTimeout:
            outcome = "stopped"
        return outcome, time.perf_counter() - started

    free, free_s = min((run(60.0) for _ in range(3)), key=lambda r: r[1])
    cut, cut_s = min((run(0.1) for _ in range(3)), key=lambda r: r[1])
    return (
        f"| `{expr}` over 1 h at 1 s, 400 series | {free} in {free_s:.2f} s (timeout 60 s);"
        f" {cut} after {cut_s:.2f} s with a timeout of 0.1 s |"
    )


def json_rows() -> list[str]:
    alert = {"labels": {"alertname": "A", "region": "eu"}, "annotations": {"summary": "x" * 80}}
    body = json.dumps({"version": "4", "status": "firing", "alerts": [alert] * 500}).encode()
    ours = best_of(lambda: jsonbody.loads(body), repeat=20)
    peer = best_of(lambda: json.loads(body), repeat=20)
    deep = b"[" * 5000 + b"]" * 5000
    refused = best_of(lambda: _refused(deep), repeat=20)
    return [
        f"| a {len(body) // 1024} KiB webhook (500 alerts) | {ours * 1e3:.2f} ms"
        f" | {peer * 1e3:.2f} ms |",
        f"| 5,000 nested brackets | refused in {refused * 1e3:.2f} ms | RecursionError (a 500) |",
    ]


def _refused(body: bytes) -> None:
    try:
        jsonbody.loads(body)
    except jsonbody.JSONBodyError:
        return
    raise AssertionError("a deep body was read")


def report() -> str:
    lines = [
        f"Machine: {machine(dated=True)}. Settings: the defaults (`query.max_length` 64 KiB,",
        "`query.max_depth` 64, JSON depth 64). Best of 3 to 50 runs; the peers in a subprocess",
        f"killed after {LIMIT_S:g} s.",
        "",
        "| regex | RE2 (ours) | Python `re` (before; with ~0.05 s of process start) |",
        "|---|---|---|",
        *regex_rows(),
        "",
        "| expression | parse front end (ours) | the parser binding alone (before) |",
        "|---|---|---|",
        *parse_rows(),
        "",
        "| query | outcome |",
        "|---|---|",
        deadline_row(),
        "",
        "| request body | `jsonbody.loads` (ours) | `json.loads` (before) |",
        "|---|---|---|",
        *json_rows(),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    args = parser.parse_args()
    body = report()
    print(body)
    if not args.no_write:
        heading = "## Hostile input (`benchmarks/hostile.py`)"
        write_section(ROOT / "BENCHMARKS.md", MARKERS, body, heading)


if __name__ == "__main__":
    main()
