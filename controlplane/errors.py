"""Exceptions of the controlplane package.

ControlPlaneError
 +-- ConfigError           bad configuration or YAML: file, object and field named
 |    +-- RuleFileError          a rule file promtool would refuse (rules/load.py)
 |    +-- TemplateParseError     an annotation/label template that does not parse (rules/golex.py)
 +-- TemplateExecError     a template that fails while expanding (rules/goexec.py)
 +-- FuncError             a template function called wrongly (internal, rules/govalues.py)
 +-- RemediationError      a runbook request that cannot be honoured (runbooks/engine.py)
 +-- NotifyError ...       see controlplane/notify/errors.py
 +-- ScrapeError           a target answered with something that is not exposition text
 +-- QueryError            a PromQL problem, with Prometheus's errorType
 |    +-- ParseError       bad_data: the expression does not parse (position in the message)
 |    +-- EvalError        execution: many-to-many matching, wrong types at run time, ...
 |    +-- QueryTimeout     timeout
 +-- StoreError            the time-series store cannot do what was asked
"""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ControlPlaneError):
    pass


class ScrapeError(ControlPlaneError):
    pass


class QueryError(ControlPlaneError):
    error_type = "execution"


class ParseError(QueryError):
    error_type = "bad_data"


class EvalError(QueryError):
    error_type = "execution"


class QueryTimeout(QueryError):
    error_type = "timeout"


class StoreError(ControlPlaneError):
    pass
