"""The SRE control plane.

collect -> tsdb -> promql -> rules -> notify / runbooks -> audit (docs/architecture.md).
"""
