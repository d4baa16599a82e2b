"""The data model every step shares: labels, matchers, series and batches of them, RE2
regular expressions for matchers, Prometheus durations and timestamps as text.

Bottom layer: imports nothing of the control plane but `controlplane.errors`.
"""
