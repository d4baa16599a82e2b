"""The embedded PromQL engine: Prometheus semantics over a SeriesSource.

`Engine(source).instant(expr, t_ms)` / `.range(expr, start_ms, end_ms, step_ms)` implement
`results.Querier` (the one query interface, also implemented by `remote`); `catalog` answers
the series and label endpoints; `MemorySource` is an in-memory SeriesSource.
May import `model` (and `controlplane.errors`) only: never tsdb (it reads a SeriesSource).
"""

from controlplane.promql.engine import Engine
from controlplane.promql.memsource import MemorySource

__all__ = ["Engine", "MemorySource"]
