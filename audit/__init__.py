"""Append-only, hash-chained, signed audit log. Never imports `connector`."""

from audit.event import (
    Actor,
    AppendReceipt,
    AuditEvent,
    Basis,
    InvalidEventError,
    ResourceRef,
    Source,
)
from audit.vocab import (
    FORBIDDEN_PURPOSES,
    Action,
    ActorKind,
    BasisKind,
    Decision,
    Outcome,
    Phase,
    Purpose,
    ResourceKind,
    Severity,
)

__all__ = [
    "FORBIDDEN_PURPOSES",
    "Action",
    "Actor",
    "ActorKind",
    "AppendReceipt",
    "AuditEvent",
    "Basis",
    "BasisKind",
    "Decision",
    "InvalidEventError",
    "Outcome",
    "Phase",
    "Purpose",
    "ResourceKind",
    "ResourceRef",
    "Severity",
    "Source",
]
