"""Append-only, hash-chained, signed audit log. Never imports `connector`."""

from audit.errors import AuditError, AuditWriteError, NotAnAuditLogError, SchemaVersionError
from audit.event import (
    Actor,
    AppendReceipt,
    AuditEvent,
    Basis,
    InvalidEventError,
    ResourceRef,
    Source,
)
from audit.hashing import keyed_hash
from audit.log import AuditLog, open_audit_log
from audit.memory import MemoryAuditLog
from audit.records import Checkpoint, QueryFilter, StoredEvent
from audit.verify import Damage, Problem, VerifyReport
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
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "AuditWriteError",
    "Basis",
    "BasisKind",
    "Checkpoint",
    "Damage",
    "Decision",
    "InvalidEventError",
    "MemoryAuditLog",
    "NotAnAuditLogError",
    "Outcome",
    "Phase",
    "Problem",
    "Purpose",
    "QueryFilter",
    "ResourceKind",
    "ResourceRef",
    "SchemaVersionError",
    "Severity",
    "Source",
    "StoredEvent",
    "VerifyReport",
    "keyed_hash",
    "open_audit_log",
]
