"""BENCHMARKS.md as the benchmarks write it: each script owns one section between its markers
and rewrites only that, and names the machine the same way."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path


def write_section(path: Path, markers: tuple[str, str], body: str, heading: str) -> None:
    """Put `body` between the markers, in place; a file without them gets `heading` (if any)
    and the section at its end."""
    begin, end = markers
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        start, stop = text.index(begin), text.index(end) + len(end)
        text = text[:start] + block + text[stop:]
    else:
        lead = f"{heading}\n\n" if heading else ""
        text = text.rstrip("\n") + f"\n\n{lead}{block}\n"
    path.write_text(text)


def machine(*, dated: bool = False) -> str:
    """`2 cores (nproc), <CPU model>, Python 3.11.7, Linux 6.x[, date]`."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    text = (
        f"{os.cpu_count()} cores (`nproc`), {cpu}, Python {platform.python_version()},"
        f" {platform.system()} {platform.release()}"
    )
    return f"{text}, {dt.date.today().isoformat()}" if dated else text
