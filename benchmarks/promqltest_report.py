"""Conformance table: pass/skip/fail per promqltest file, and the skip reasons.

    .venv/bin/python benchmarks/promqltest_report.py [--failures]

Runs the same cases, with the same skips, as tests/controlplane/promql/test_promqltest.py.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.controlplane.promql.test_promqltest import all_cases, run, skip_reason


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--failures", action="store_true", help="print each failure")
    args = parser.parse_args()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    failures = []
    for case in all_cases():
        reason = skip_reason(case)
        if reason is not None:
            counts[case.file]["skip"] += 1
            reasons[reason] += 1
            continue
        try:
            run(case)
        except Exception as exc:  # a failing case, whatever the cause
            counts[case.file]["fail"] += 1
            failures.append(f"{case.id}: {case.cmd.expr}\n    {type(exc).__name__}: {exc}")
        else:
            counts[case.file]["pass"] += 1
    total: Counter[str] = Counter()
    print(f"{'file':22s} {'pass':>5s} {'skip':>5s} {'fail':>5s}")
    for name in sorted(counts):
        c = counts[name]
        total.update(c)
        print(f"{name:22s} {c['pass']:5d} {c['skip']:5d} {c['fail']:5d}")
    print(f"{'total':22s} {total['pass']:5d} {total['skip']:5d} {total['fail']:5d}")
    print("\nskipped, by reason:")
    for reason, n in reasons.most_common():
        print(f"  {n:4d}  {reason}")
    if args.failures:
        print("\nfailures:")
        print("\n".join(failures) or "  none")
    return 1 if total["fail"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
