"""Query a remote Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir, another control
plane) through the same `Querier` and `Catalog` interfaces as the embedded engine.

May import `promql` (its interfaces and result types) and `model`; never `api`.
"""
