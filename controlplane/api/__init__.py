"""The control plane's HTTP API.

`prometheus`: the Prometheus-compatible read API (/api/v1/query, query_range, series, labels,
label values, targets, metadata, status/buildinfo), so that Grafana, promtool and curl work
against the control plane; `params` parses its request parameters as Prometheus does; `encode`
writes Prometheus's JSON; `catalog` answers the series/label endpoints from the embedded store;
`status` answers buildinfo and the metric-metadata endpoints.
"""
