"""Prometheus rule files: loading, templates, alert state, evaluation and unit tests.

- model.py: rule values; load.py: rule files with promtool's checks;
- templates.py: alert templates as Prometheus expands them, on `controlplane.gotemplate`, with
  Prometheus's template functions in tmplfuncs.py;
- alerting.py: the alert state machine; group.py: one group at a time t; manager.py: the
  groups on APScheduler;
- unittest.py (+ unittest_file.py, unittest_format.py, notation.py, growsource.py):
  `promtool test rules` files.
May import promql, gotemplate and model; never notify (notify/handover.py takes alerts from
here), api or cli. Their HTTP face is api/rules.py, their verb cli/rules.py.
"""
