"""The deadline of the query running in this thread, for loops far below the evaluator.

The evaluator checks its deadline at every node, but one node can run long on its own: a
window walk over a month of samples, the store reading block after block. Those loops call
`check()`. A context variable carries the deadline down to them, as Go's context.Context does
in Prometheus, instead of a parameter through every function and the SeriesSource protocol.
Outside a query (`bounded` not entered) `check()` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from controlplane.errors import QueryTimeout

TIMED_OUT = "query timed out in expression evaluation"


@dataclass(frozen=True, kw_only=True)
class Deadline:
    at: float
    clock: Callable[[], float]

    def check(self) -> None:
        if self.clock() > self.at:
            raise QueryTimeout(TIMED_OUT)


_CURRENT: ContextVar[Deadline | None] = ContextVar("controlplane_query_deadline", default=None)


@contextmanager
def bounded(deadline: Deadline) -> Iterator[None]:
    token = _CURRENT.set(deadline)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def check() -> None:
    """QueryTimeout if the current query's deadline has passed."""
    deadline = _CURRENT.get()
    if deadline is not None:
        deadline.check()
