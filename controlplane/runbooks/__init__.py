"""Runbooks: guarded, verified, audited remediation.

load (YAML -> typed Runbook) -> plan (trigger match, templates) -> guard -> execute -> verify
-> rollback / on_resolved; every decision is an audit event.
May import promql (verification queries), model, `audit` and `errors`; its HTTP face is
api/runbooks.py, its verbs cli/runbooks.py and cli/automation.py.
"""
