"""The embedded PromQL engine: Prometheus semantics over a SeriesSource.

`Engine(source).instant(expr, t_ms)` / `.range(expr, start_ms, end_ms, step_ms)` implement
controlplane.results.Querier; `MemorySource` is an in-memory SeriesSource.
"""

from controlplane.promql.engine import Engine
from controlplane.promql.memsource import MemorySource

__all__ = ["Engine", "MemorySource"]
