"""What the operator modules (aggregations, binary operators, functions) see of the query being
evaluated. `evaluate.Evaluator` implements it and dispatches to them; they call back through
this interface, so the modules depend on it rather than on the evaluator (no import cycle).
"""

from __future__ import annotations

from typing import Any, Protocol

from controlplane.promql.labelcache import LabelCache
from controlplane.promql.parse import Query
from controlplane.promql.values import RangeVector, Scalar, Steps, Value, Vector


class Evaluator(Protocol):
    frame: Steps
    query: Query
    labels: LabelCache

    def eval(self, node: Any, steps: Steps) -> Value: ...

    def vector(self, node: Any, steps: Steps) -> Vector: ...

    def scalar(self, node: Any, steps: Steps) -> Scalar: ...

    def range_vector(self, node: Any, steps: Steps) -> RangeVector: ...

    def warn(self, message: str) -> None: ...
