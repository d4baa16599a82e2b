"""The audit log: append-only, hash-chained, and anchored outside the database.

    chain.py    AuditLog: append, events, verify (the rows and the head row, SHA-256 chained)
    anchor.py   Anchorer (head -> anchor file), HeadCollector (head -> /metrics), read_anchors

Whoever can write the database can delete the newest rows and rewrite the head row to match:
the chain alone cannot tell. The anchor file and the Prometheus that scrapes /metrics keep the
head where the database's writers cannot reach it; `verify(anchors=...)` compares.

AnchorError (anchor.py): the anchor file cannot be read, or a line of it is not an anchor.
A leaf of the tree: it imports nothing of the control plane but `errors`; runbooks, the API
and the command line write and read it.
"""

from controlplane.audit.anchor import (
    Anchorer,
    AnchorError,
    HeadCollector,
    append_anchor,
    default_anchor_path,
    last_anchor,
    read_anchors,
    rfc3339,
)
from controlplane.audit.chain import (
    APPEND_ONLY_DDL,
    GENESIS,
    Anchor,
    AuditEvent,
    AuditLog,
    Head,
    Verification,
    anchor_problems,
    audit_events,
    audit_head,
    hash_input,
    install,
    metadata,
)

__all__ = [
    "APPEND_ONLY_DDL",
    "GENESIS",
    "Anchor",
    "AnchorError",
    "Anchorer",
    "AuditEvent",
    "AuditLog",
    "Head",
    "HeadCollector",
    "Verification",
    "anchor_problems",
    "append_anchor",
    "audit_events",
    "audit_head",
    "default_anchor_path",
    "hash_input",
    "install",
    "last_anchor",
    "metadata",
    "read_anchors",
    "rfc3339",
]
