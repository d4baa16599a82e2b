"""Runbooks: guarded, verified, audited remediation.

load (YAML -> typed Runbook) -> plan (trigger match, templates) -> guard -> execute -> verify
-> rollback / on_resolved; every decision is an audit event.
"""
