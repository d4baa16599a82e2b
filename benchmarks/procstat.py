"""CPU of a role as the benchmarks count it: the process and its live descendants.

The wallet serves from a granian worker it forked, so its own /proc entry alone would show
almost nothing; every figure here is the whole role's.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stats() -> dict[int, list[str]]:
    """Each live process's /proc stat fields after the command's closing parenthesis
    (state, ppid, ..., utime at [11], stime at [12])."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    return stats


def serving_pid(pid: int) -> int:
    """The process that serves a role's requests: its granian worker if it forked one."""
    children = [child for child, fields in _stats().items() if int(fields[1]) == pid]
    return children[0] if children else pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants so far."""
    stats = _stats()
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            fields = stats[current]
            total += (int(fields[11]) + int(fields[12])) / TICK
            todo.extend(child for child, f in stats.items() if int(f[1]) == current)
    return total
