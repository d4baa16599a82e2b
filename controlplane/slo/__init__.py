"""SLO specs (rules/slo/*.yaml), the multi-window multi-burn-rate rules generated from them,
and where each SLO stands. May import rules, promql and model; its HTTP face is api/slo.py.
"""

from controlplane.slo.generate import generate_rule_file, generate_rule_groups, known_alerts
from controlplane.slo.spec import SLO, SLOSpec, load_spec, load_specs

__all__ = [
    "SLO",
    "SLOSpec",
    "generate_rule_file",
    "generate_rule_groups",
    "known_alerts",
    "load_spec",
    "load_specs",
]
