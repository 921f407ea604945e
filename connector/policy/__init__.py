"""Limited Use in code: the pure policy, the one access gate, consents, approvals, aggregates.

Import the gate from `connector.policy.gate`; this package re-exports the policy's values.
"""

from connector.errors import (
    AccessDenied,
    AuditUnavailableError,
    PolicyError,
    PolicyInputError,
    PolicyRecordNotFoundError,
)
from connector.policy.access import AccessContext, GateStats
from connector.policy.facts import (
    ApprovalFact,
    ApprovalStatus,
    ConsentFact,
    GranteeKind,
    PolicyRequest,
)
from connector.policy.rules import GRANTS, Allow, Deny, Verdict, decide
from connector.policy.vocab import ALLOWED_PURPOSES, Operation, Reason

__all__ = [
    "ALLOWED_PURPOSES",
    "GRANTS",
    "AccessContext",
    "AccessDenied",
    "Allow",
    "ApprovalFact",
    "ApprovalStatus",
    "AuditUnavailableError",
    "ConsentFact",
    "Deny",
    "GateStats",
    "GranteeKind",
    "Operation",
    "PolicyError",
    "PolicyInputError",
    "PolicyRecordNotFoundError",
    "PolicyRequest",
    "Reason",
    "Verdict",
    "decide",
]
