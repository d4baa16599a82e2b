"""The data model every step shares: labels, matchers, series and batches of them, RE2
regular expressions for matchers (regex.py), Prometheus durations and timestamps as text, and
the running query's deadline (deadline.py) for the loops below the evaluator.

Bottom layer: imports nothing of the control plane but `controlplane.errors`.
"""
