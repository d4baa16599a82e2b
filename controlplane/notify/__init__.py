"""What reaches people: Alertmanager's model inside the control plane.

alerts      the Alert value, its fingerprint and group keys as Alertmanager computes them
matchers    the `a="b"`, `a=~"re"`, `a!="b"` matcher syntax
routing     the route tree, receivers and inhibit rules from Alertmanager-shaped YAML
receivers   integration configs per receiver (webhook, log, pagerduty, email, slack _configs)
dispatch    aggregation groups, flush timing; `tick(now)` decides into the outbox
nflog       the notification log (in the database) and Alertmanager's dedup decision
outbox      decided notifications in the database, claimed by lease, paced per key
sender      delivers outbox rows: retries, Retry-After, dead letters, `notified` audit events
runner      the production threads: one ticks the dispatcher, a few run the sender
silences    silences in the control plane database (SQLAlchemy Core; `metadata`)
inhibit     inhibition rules
notifiers   the Notifier protocol, the log and webhook (version 4 JSON) notifiers
pagerduty   PagerDuty Events API v2: trigger and resolve on the group's dedup_key
email       email over SMTP (smtplib)
message     Alertmanager's default texts (subject, alert list) and Retry-After, shared
slack       Slack: one message per group, posted then edited; where it is (`slack_messages`)
slack_blocks  the Slack messages' Block Kit, pure
slack_threads runbook progress as replies in the thread of its alert's message
ingest      Alertmanager webhook payloads in, checked strictly, as Alerts
handover    rule alerts (controlplane.rules) into the dispatcher
service     `build_notify(...)`: everything above wired together
errors      the exceptions (under controlplane.errors.ControlPlaneError)

May import rules (alerts in), model and errors; its HTTP face is api/notify.py.
"""
