"""Prometheus rule files: loading, templates, alert state, evaluation, the API and unit tests.

- model.py: rule values; load.py: rule files with promtool's checks;
- templates.py: alert templates as Prometheus expands them, on gotemplate.py (parse: golex.py,
  gonodes.py), goexec.py + gobuiltins.py (execute), gofmt.py (Go's fmt), tmplfuncs.py;
- alerting.py: the alert state machine; group.py: one group at a time t; manager.py: the
  groups on APScheduler; handover.py: alerts to the notification dispatcher;
- api.py: /api/v1/rules and /api/v1/alerts;
- unittest.py (+ unittest_file.py, unittest_format.py, notation.py, growsource.py):
  `promtool test rules` files; controlplane/rulescli.py: the `rules` verb.
"""
