"""What a person can do to the control plane, in one place: the HTTP API, the dashboards and
Slack all call these, so a role, a refusal and an audit event mean the same wherever the click
came from.

    ops = Operations(remediator=..., executions=..., switches=..., audit=..., silences=...)
    ops.pause(user, "incident 7")            # Forbidden (403) for a viewer
    ops.approve(user, execution_id)          # Forbidden for the requester, RemediationError (409)

Every call checks the user's role first and writes nothing when it refuses.
"""

from controlplane.operate.operations import Operations, SilenceRequest, Silencing

__all__ = ["Operations", "SilenceRequest", "Silencing"]
