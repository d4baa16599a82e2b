"""The control plane's HTTP API.

`prometheus`: the Prometheus-compatible read API (/api/v1/query, query_range, series, labels,
label values, targets, metadata, status/buildinfo), so that Grafana, promtool and curl work
against the control plane; `params` parses its request parameters as Prometheus does; `encode`
writes Prometheus's JSON; `status` answers buildinfo and the metric-metadata endpoints.
`rules`, `notify`, `runbooks`, `slo`: the blueprints of those packages (alerts and rules,
Alertmanager webhook and silences, executions and automation, SLO status); `auth` the tokens.
Top layer: may import every package below; nothing imports it but `app`, `pipeline` and `cli`.
"""
