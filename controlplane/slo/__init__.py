"""SLO specs (rules/slo/*.yaml) and the multi-window multi-burn-rate rules generated from them."""

from controlplane.slo.generate import generate_rule_file, generate_rule_groups
from controlplane.slo.spec import SLO, SLOSpec, load_spec, load_specs

__all__ = [
    "SLO",
    "SLOSpec",
    "generate_rule_file",
    "generate_rule_groups",
    "load_spec",
    "load_specs",
]
