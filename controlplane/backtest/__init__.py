"""Backtest: replay recorded samples through rule files and runbook planning, and report what
would have fired and acted.

Top layer beside `api`: may import rules, runbooks, promql, tsdb, model and `config`; not `cli`.
"""
