"""A text progress bar on stderr for long-running verbs, quiet on short work."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TextIO

# a callback told (work done, work total) as long work proceeds
Progress = Callable[[int, int], None]


class ProgressBar:
    """A text bar on `stream`: redrawn in place on a terminal, otherwise a line now and then.
    Nothing is drawn for work that ends within `delay_s`; at most `per_s` redraws a second."""

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        delay_s: float = 0.5,
        per_s: float = 4.0,
        line_every_s: float = 10.0,
        width: int = 30,
    ) -> None:
        self.stream, self.clock, self.width = stream, clock, width
        self.delay_s, self.tty = delay_s, stream.isatty()
        self.every_s = 1 / per_s if self.tty else line_every_s
        self.label = ""
        self._started = self._last = 0.0
        self._drawn = self._open = False

    def begin(self, label: str) -> None:
        self.label, self._started, self._last, self._drawn = label, self.clock(), 0.0, False

    def end(self) -> None:
        """Leave the line of an unfinished bar (work that failed) before anything else."""
        if self._open:
            self.stream.write("\n")
            self._open = False

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        finished = done >= total
        if now - self._started < self.delay_s and not (finished and self._drawn):
            return
        if not finished and self._drawn and now - self._last < self.every_s:
            return
        if finished and not self._drawn:
            return  # a bar that never showed need not show that it is done
        share = done / total if total else 1.0
        filled = int(self.width * share)
        text = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%}"
        text += f" {done}/{total}"
        if self.tty:
            self.stream.write(f"\r{text}" + ("\n" if finished else ""))
            self._open = not finished
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._last, self._drawn = now, True


@contextlib.contextmanager
def _bar(bar: ProgressBar | None, label: str) -> Iterator[Progress | None]:
    if bar is not None:
        bar.begin(label)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.end()


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Rule failures are counted in the report; one log line per failed step would drown it."""
    logger = logging.getLogger(logger_name)

    def drop(record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


# -- the report -------------------------------------------------------------------------------
