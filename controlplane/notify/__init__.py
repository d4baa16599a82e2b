"""What reaches people: Alertmanager's model inside the control plane.

alerts      the Alert value, its fingerprint and group keys as Alertmanager computes them
matchers    the `a="b"`, `a=~"re"`, `a!="b"` matcher syntax
routing     the route tree, receivers and inhibit rules from Alertmanager-shaped YAML
receivers   integration configs per receiver (webhook_configs, log_configs)
dispatch    aggregation groups, flush timing, retries; `tick(now)`
nflog       the notification log and Alertmanager's dedup decision
runner      the production thread that ticks the dispatcher
silences    silences in the control plane database (SQLAlchemy Core; `metadata`)
inhibit     inhibition rules
notifiers   the Notifier protocol, the log and webhook (version 4 JSON) notifiers
ingest      Alertmanager webhook payloads in, checked strictly, as Alerts
handover    rule alerts (controlplane.rules) into the dispatcher
service     `build_notify(...)`: everything above wired together
errors      the exceptions (under controlplane.errors.ControlPlaneError)

May import rules (alerts in), model and errors; its HTTP face is api/notify.py.
"""
